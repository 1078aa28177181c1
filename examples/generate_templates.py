"""Regenerate the template examples' weights: ``python examples/generate_templates.py [--out DIR]``.

Needs timm and transformers (the vision venv: ``make install-vision``). Each model is built from
the model.py that gasbuild renders for it, given a seeded initialisation, and saved the way a
miner's training code would save it, so that the examples exercise the conversion stage:

- templates/weights/image.pt: a DataParallel state_dict (``module.`` prefix);
- templates/weights/video.pth: a plain state_dict;
- templates/weights/audio.ckpt: a Lightning checkpoint (``state_dict`` with a ``net.`` prefix);
- hf-image/weights/: a tiny ViT's config.json and a two-shard safetensors checkpoint with its
  index, under the names ``save_pretrained`` writes.

Running this twice gives byte-identical files; tests/test_templates_vision.py checks the
committed files against a fresh run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
SEED = 1234
sys.path.insert(0, str(HERE.parent))

from gasbuild import manifest  # noqa: E402
from gasbuild.stages import render  # noqa: E402

VIT_CONFIG = {
    "image_size": 64,
    "patch_size": 16,
    "num_channels": 3,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "num_labels": 2,
}


def rendered_module(project: manifest.Project, modality: str, workdir: Path) -> ModuleType:
    """Import the model.py gasbuild renders for one model of a project."""
    (target,) = project.targets(frozenset({modality}))  # type: ignore[arg-type]
    arch = target.spec.architecture
    assert arch is not None and arch.template is not None
    template = project.template_registry().get(arch.template)
    assert template is not None
    path = workdir / f"{modality}_model.py"
    path.write_bytes(render.render_model_py(target, template, template.values(arch.args)))
    spec = importlib.util.spec_from_file_location(f"rendered_{modality}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seeded(module: ModuleType, num_classes: int = 2) -> Any:
    import torch

    torch.manual_seed(SEED)
    return module.Detector(num_classes)


def templates_example(out: Path, workdir: Path) -> None:
    import torch

    project = manifest.load(HERE / "templates" / "gas.toml")
    weights = out / "templates" / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    image = seeded(rendered_module(project, "image", workdir)).backbone.state_dict()
    torch.save({f"module.{k}": v for k, v in image.items()}, weights / "image.pt")
    video = seeded(rendered_module(project, "video", workdir)).state_dict()
    torch.save(video, weights / "video.pth")
    audio = seeded(rendered_module(project, "audio", workdir)).state_dict()
    lightning = {
        "epoch": 3,
        "global_step": 1200,
        "state_dict": {f"net.{k}": v for k, v in audio.items()},
    }
    torch.save(lightning, weights / "audio.ckpt")


def hf_example(out: Path, tmp: Path) -> None:
    import torch
    import transformers
    from safetensors.torch import load_file, save_file

    weights = out / "hf-image" / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    config = transformers.ViTConfig(**VIT_CONFIG)
    torch.manual_seed(SEED)
    model = transformers.ViTForImageClassification(config)
    # The names save_pretrained writes (transformers 5 names its modules otherwise in memory,
    # and maps between the two when loading); resharded here in a fixed layout, since
    # save_pretrained's shard files carry its version.
    model.save_pretrained(tmp / "vit")
    state = load_file(tmp / "vit" / "model.safetensors")
    names = sorted(state)
    half = len(names) // 2
    shards = {
        "model-00001-of-00002.safetensors": names[:half],
        "model-00002-of-00002.safetensors": names[half:],
    }
    weight_map = {}
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, weights / shard, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(keys, shard))
    total = sum(t.numel() * t.element_size() for t in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (weights / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    data = {"architectures": ["ViTForImageClassification"], "model_type": "vit", **VIT_CONFIG}
    (weights / "config.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="examples directory to write")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        templates_example(args.out, Path(tmp))
        hf_example(args.out, Path(tmp))


if __name__ == "__main__":
    main()
