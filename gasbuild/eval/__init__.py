"""``gasbuild eval``/``predict``: the network's preprocessing and metrics on local data.

``data`` reads the labelled layout, ``media`` decodes and preprocesses as the benchmark does,
``metrics`` is the benchmark's arithmetic, ``engine`` runs a zip's model in the sandbox and
caches the figures, ``gate`` decides whether a push may go ahead. See docs/eval.md.
"""
