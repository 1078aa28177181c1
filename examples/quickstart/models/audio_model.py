"""Quickstart audio detector: strided 1D convolutions over the raw 16 kHz waveform.

Input  [B, 96000] float32 in [-1, 1] (6.0 s mono at 16 kHz).
Output [B, num_classes] logits: [real, synthetic].
"""

import torch
import torch.nn as nn
from safetensors.torch import load_file


class AudioDetector(nn.Module):
    """A learned filterbank (25 ms windows, 10 ms hop), one more convolution, pooling, head."""

    def __init__(self, num_classes: int = 2, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, width, kernel_size=400, stride=160),  # 96000 samples -> 598 frames
            nn.ReLU(),
            nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
        )
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 [B, 96000] -> logits [B, num_classes]."""
        # Cast to the weights' dtype: the loader may cast weights to fp16/bf16, never the input.
        x = x.to(self.head.weight.dtype).unsqueeze(1)  # [B, 1, 96000]
        return self.head(self.features(x).flatten(1))


def load_model(weights_path: str, num_classes: int = 2, width: int = 16) -> nn.Module:
    """Entry point: the network calls it with model_config.yaml's `model` keys as keywords."""
    model = AudioDetector(num_classes=num_classes, width=width)
    model.load_state_dict(load_file(weights_path), strict=True)
    return model
