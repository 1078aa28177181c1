"""Quickstart image detector: a few convolutions over the benchmark's uint8 RGB images.

Input  [B, 3, H, W] uint8 0..255, any H, W (the benchmark never normalises nor casts it).
Output [B, num_classes] logits: [real, synthetic].
"""

import torch
import torch.nn as nn
from safetensors.torch import load_file

MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics, applied inside forward()
STD = (0.229, 0.224, 0.225)


class ImageDetector(nn.Module):
    """Two strided 3x3 convolutions, global average pooling and a linear head."""

    def __init__(self, num_classes: int = 2, width: int = 16) -> None:
        super().__init__()
        # Constants, not weights: kept out of the safetensors file (persistent=False).
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)
        self.features = nn.Sequential(
            nn.Conv2d(3, width, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 3, H, W] -> logits [B, num_classes]."""
        # Cast to the weights' dtype: the loader may cast weights to fp16/bf16, never the input.
        dtype = self.head.weight.dtype
        x = x.to(dtype) / 255.0
        x = (x - self.mean.to(dtype)) / self.std.to(dtype)
        return self.head(self.features(x).flatten(1))


def load_model(weights_path: str, num_classes: int = 2, width: int = 16) -> nn.Module:
    """Entry point: the network calls it with model_config.yaml's `model` keys as keywords."""
    model = ImageDetector(num_classes=num_classes, width=width)
    model.load_state_dict(load_file(weights_path), strict=True)
    return model
