"""The smoke test's child process: load a submission as the network's loader does, then run it.

``smoke.py`` runs this file by path (``python -I smoke_child.py``), in a temporary directory,
under a memory limit and a timeout, and never imports it. Protocol: one JSON job on stdin; JSON
lines on the *original* stdout: ``{"phase": ...}`` as each step starts (so the parent can say
where a timeout or a crash struck) and, last, ``{"result": {"findings": [...]}}``. Before any
model code runs, file descriptor 1 is pointed at stderr, so the model's prints, C-level writes
included, can never break the protocol.

It imports nothing from gasbuild (the package may not be importable under ``-I``): the contract
tables of ``gasbuild.submission`` arrive in the job, so each literal still lives in one place.
The steps follow the public loader (SPEC.md §1-§2): ``yaml.safe_load`` the config; import
``model.py`` as a lone module; ``load_model(path, **model_kwargs)``, or ``num_classes`` only when
the signature cannot take the keywords (the loader binds the signature first, and a TypeError
raised inside ``load_model`` is a failure, not a reason to retry); ``.to("cpu", dtype).eval()``;
forward under ``torch.no_grad()`` on the benchmark's input, at the smoke batch and at 1; unwrap
the output as the loader does.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Run by path under -I (launch.py puts this folder on sys.path) or imported by tests: either
# way only the siblings here are imported, never gasbuild itself.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))

if TYPE_CHECKING:
    from gasbuild.sandbox.loader_child import (
        Channel,
        Loader,
        Plan,
        Stop,
        dummy_input,
        forward_line,
        limit_resources,
        logits_problem,
        read_plan,
        unwrap,
    )
else:
    from loader_child import (
        Channel,
        Loader,
        Plan,
        Stop,
        dummy_input,
        forward_line,
        limit_resources,
        logits_problem,
        read_plan,
        unwrap,
    )


@dataclass
class Smoke(Loader):
    """One smoke run: the shared loading steps, then forwards whose raw logits the parent
    judges (it trusts no verdict from this process)."""

    # Raw measurements of each forward, for the parent to judge.
    measured: list[dict[str, Any]] = field(default_factory=list)

    def run(self) -> list[dict[str, Any]]:
        with contextlib.suppress(Stop):
            plan = read_plan(self.job, self.report)
            torch = self.import_torch()
            module = self.import_model(plan)
            model = self.load(plan, module, torch)
            self.check_weights(plan, model, torch)
            self.forward_all(plan, model, torch)
        return self.report.findings

    def forward_all(self, plan: Plan, model: Any, torch: Any) -> None:
        """Forward at the smoke batch, then at 1 (the last batch is short); stop at a failure.

        The benchmark also reads an embedding from the input of the model's classification
        head, found as it finds it (``find_head``): a forward pre-hook there tells whether the
        head exists and is used (GAS609).
        """
        head = find_head(model, plan.loader_num_classes, torch)
        calls: list[int] = []
        handle = None
        if head is not None:
            handle = head[1].register_forward_pre_hook(lambda _module, _inputs: calls.append(1))
        for batch in dict.fromkeys((self.job["batch"], 1)):
            self.phase("running forward", batch=batch)
            self.forward(plan, model, torch, batch)
        if handle is not None:
            handle.remove()
        self.check_head(plan, head, bool(calls))

    def check_head(self, plan: Plan, head: tuple[str, Any] | None, called: bool) -> None:
        """GAS609: no head for the benchmark's embedding, or one that forward never calls."""
        name = self.job["contract"]["model_file"]
        hint = (
            f"expose the final layer as self.classifier = nn.Linear(features, "
            f"{plan.loader_num_classes}) "
            "on the module load_model returns, and call it last in forward"
        )
        if head is None:
            message = (
                "the benchmark finds no classification head (self.classifier, or any nn.Linear "
                f"with out_features == num_classes = {plan.loader_num_classes}): it cannot read "
                "embeddings, and the generalization part of the score is set to its floor"
            )
            self.report.add("GAS609", "warning", message, file=name, hint=hint)
        elif not called:
            message = (
                f"the benchmark reads embeddings from the input of {head[0]!r}, the "
                "classification head it finds, but forward never calls it: no embedding"
            )
            self.report.add("GAS609", "warning", message, file=name, hint=hint)

    def forward(self, plan: Plan, model: Any, torch: Any, batch: int) -> None:
        shape = (batch, *plan.sample_shape)
        nonce = self.job.get("nonce")
        inputs = dummy_input(torch, plan.modality, shape, nonce if isinstance(nonce, str) else None)
        doing = f"forward on a batch of {batch} {list(inputs.shape)} {inputs.dtype}"
        try:
            with torch.no_grad():
                logits = unwrap(model(inputs))
        except BaseException as exc:
            raise self.fail(exc, doing, plan) from exc
        line = forward_line(model, plan.model_path)
        name = self.job["contract"]["model_file"]
        problem = logits_problem(torch, logits, batch, plan.num_classes, self.job["contract"])
        if problem is not None:
            self.report.add("GAS605", "error", f"{doing}: {problem}", file=name, line=line)
            raise Stop
        if not bool(torch.isfinite(logits).all()):
            self.report.add(
                "GAS606", "error", f"{doing}: the logits hold NaN or Inf", file=name, line=line
            )
            raise Stop
        self.measured.append(
            {
                "batch": batch,
                "input_shape": list(shape),
                "logits": logits.detach().float().tolist(),
                "dtype": str(logits.dtype).removeprefix("torch."),
            }
        )


def find_head(model: Any, num_classes: object, torch: Any) -> tuple[str, Any] | None:
    """The layer the benchmark takes as the classification head, found as it finds it.

    First ``model.classifier`` when it is an ``nn.Linear`` with ``num_classes`` outputs; else
    the deepest such ``nn.Linear`` anywhere in the model (ties: more inputs, then the first
    found, as the benchmark's stable sort keeps it); else none.
    """
    if not isinstance(num_classes, int):
        return None
    linear = torch.nn.Linear
    explicit = getattr(model, "classifier", None)
    if isinstance(explicit, linear) and explicit.out_features == num_classes:
        return "classifier", explicit
    candidates = [
        (name.count("."), module.in_features, -index, name, module)
        for index, (name, module) in enumerate(model.named_modules())
        if isinstance(module, linear) and module.out_features == num_classes
    ]
    if not candidates:
        return None
    _, _, _, name, module = max(candidates, key=lambda c: c[:3])
    return name, module


def main() -> None:
    channel = Channel()
    job = json.loads(sys.stdin.read())
    limit_resources(int(job["memory_mb"]))
    for entry in job["sys_path"]:
        if entry not in sys.path:
            sys.path.append(entry)
    smoke = Smoke(job, channel)
    findings = smoke.run()
    channel.send({"result": {"findings": findings, "measured": smoke.measured}})
    sys.stderr.flush()
    # Leave now: a thread the model started, or a destructor at exit, must not hold us until
    # the timeout once the result is out.
    os._exit(0)


if __name__ == "__main__":
    main()
