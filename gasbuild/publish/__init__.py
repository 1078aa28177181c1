"""Publishing built zips to GAS: sign, upload, confirm, commit on chain, and remember it.

``push`` orchestrates; ``gasapi`` speaks BitMind's upload API (``epistula`` signs it); ``chain``
commits and reads back through bittensor or an in-memory stand-in; ``receipts`` makes a push
resumable; ``wallet`` loads hotkeys without exposing secrets; ``storage`` mirrors copies. Nothing
here imports bittensor at module level (see docs/push.md).
"""
