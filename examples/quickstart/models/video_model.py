"""Quickstart video detector: a shared 2D trunk over each frame, averaged over time.

Input  [B, T, 3, H, W] uint8 0..255, any T, H, W.
Output [B, num_classes] logits: [real, synthetic, semisynthetic].
"""

import torch
import torch.nn as nn
from safetensors.torch import load_file

MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics, applied inside forward()
STD = (0.229, 0.224, 0.225)


class VideoDetector(nn.Module):
    """Per-frame convolutions (frames folded into the batch), mean over time, linear head."""

    def __init__(self, num_classes: int = 3, width: int = 16) -> None:
        super().__init__()
        # Constants, not weights: kept out of the safetensors file (persistent=False).
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)
        self.frames = nn.Sequential(
            nn.Conv2d(3, width, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 [B, T, 3, H, W] -> logits [B, num_classes]."""
        batch, time = x.shape[0], x.shape[1]
        # Cast to the weights' dtype: the loader may cast weights to fp16/bf16, never the input.
        dtype = self.head.weight.dtype
        x = x.flatten(0, 1).to(dtype) / 255.0  # [B*T, 3, H, W]
        x = (x - self.mean.to(dtype)) / self.std.to(dtype)
        per_frame = self.frames(x).flatten(1).view(batch, time, -1)  # [B, T, width]
        return self.head(per_frame.mean(dim=1))


def load_model(weights_path: str, num_classes: int = 3, width: int = 16) -> nn.Module:
    """Entry point: the network calls it with model_config.yaml's `model` keys as keywords."""
    model = VideoDetector(num_classes=num_classes, width=width)
    model.load_state_dict(load_file(weights_path), strict=True)
    return model
