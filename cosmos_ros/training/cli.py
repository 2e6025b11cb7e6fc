"""`cosmos-ros train sft|grpo` and `cosmos-ros eval`.

    cosmos-ros train sft  --config training/sft_tiny.yaml [--resume auto] [--export DIR] [--trainer.max_steps 100 ...]
    cosmos-ros train grpo --config training/grpo_tiny.yaml --model.model runs/sft/export
    cosmos-ros eval --model runs/sft/export --model runs/grpo/export --data data/sim --split test --out runs/eval
    cosmos-ros eval --model M --data D --engine onnxruntime --precision int8 --out runs/eval-int8

`train` is LightningCLI over the module (SFTModule / GRPOModule) and VideoQADataModule: every knob
is in the YAML and any can be overridden on the command line. `data.model` follows `model.model`
(the processor must be the model's own). `--resume auto` continues from the run's
`checkpoints/last.ckpt` when there is one (optimizer, schedule, loop position and sampler epoch
are restored). After fitting, the weights are exported as an HF-layout directory (default
`<trainer.default_root_dir>/export`) that `create_engine("torch", DIR)` and the reasoner node load.
`--select val/answer_acc` (SFT) or `--select val/accuracy` (GRPO) exports the weights of the
validation round where that metric was highest instead of the last ones: held-out accuracy as the
stopping rule, since on these tasks it plateaus and jumps while the loss tells little. Weights no
round saw (the last step fell between rounds, or a run stopped during its last round was resumed)
are validated after the fit and compete too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parsers(subparsers) -> None:
    train = subparsers.add_parser(
        "train", help="train a model (SFT or GRPO) with a LightningCLI YAML config",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    train.add_argument("stage", choices=("sft", "grpo"))
    train.add_argument("lightning_args", nargs=argparse.REMAINDER,
                       help="--config FILE, --resume auto|CKPT, --export DIR and LightningCLI overrides")  # fmt: skip
    ev = subparsers.add_parser(
        "eval", help="held-out MCQ accuracy by category (table + chart), scored as the GRPO reward",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    ev.add_argument("--model", action="append", required=True,
                    help="checkpoint dir or preset (random init); repeat to compare models")  # fmt: skip
    ev.add_argument("--name", action="append", help="column name per --model (default: the folder name)")
    ev.add_argument(
        "--data", action="append", required=True, help="dataset folder with SPLIT.jsonl; repeatable"
    )
    ev.add_argument("--split", default="test")
    ev.add_argument("--out", type=Path, default=Path("runs/eval"))
    ev.add_argument("--max-new-tokens", type=int, default=64)
    ev.add_argument("--batch-size", type=int, default=32)
    ev.add_argument("--limit", type=int, default=None, help="first N questions only")
    ev.add_argument("--engine", default=None,
                    help="answer through this serving engine (torch, onnxruntime, tensorrt, module:factory), "
                         "one clip at a time as the reasoner does; default: the training model in batches")  # fmt: skip
    ev.add_argument(
        "--precision",
        default=None,
        help="with --engine: the weights' precision (onnxruntime: fp32 or int8; torch: fp32, bf16, fp16)",
    )
    ev.add_argument("--depth", type=int, default=1, help="category path parts to group by (0: full)")
    ev.add_argument("--no-random", action="store_true",
                    help="omit the baselines (uniform guessing; always the category's most frequent answer)")  # fmt: skip


def _cli_class():
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.cli import LightningCLI

    class ValidatedStep(Callback):
        """The global step of the fit's last validation round, kept in checkpoints: a run stopped
        after its last training step but before that step's validation, then resumed, still knows
        its final weights were never validated (`validate_final_weights`)."""

        def __init__(self) -> None:
            self.step = -1

        def on_validation_end(self, trainer, pl_module) -> None:
            if not trainer.sanity_checking and trainer.state.fn == "fit":
                self.step = trainer.global_step

        def state_dict(self) -> dict:
            return {"step": self.step}

        def load_state_dict(self, state_dict: dict) -> None:
            self.step = int(state_dict.get("step", -1))

    class TrainCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            parser.link_arguments("model.model", "data.model")
            parser.link_arguments("model.seed", "data.seed")
            parser.add_argument(
                "--resume", default=None, help="'auto' (last.ckpt of this run) or a checkpoint path"
            )
            parser.add_argument("--export", default=None, help="HF directory to export to after fitting")
            parser.add_argument("--checkpoint_every", type=int, default=250, help="steps between checkpoints")
            parser.add_argument(
                "--select",
                default=None,
                help="validation metric (higher is better) picking the exported weights",
            )

        def instantiate_trainer(self, **kwargs):
            # Logs and checkpoints live under the run's root, so one override moves the whole run.
            from lightning.pytorch.callbacks import ModelCheckpoint
            from lightning.pytorch.loggers import CSVLogger

            root = Path(self._get(self.config, "trainer.default_root_dir") or ".")
            every = self._get(self.config, "checkpoint_every")
            if self._get(self.config_init, "trainer.logger") in (None, True):
                kwargs["logger"] = CSVLogger(root, name="logs")
            callbacks = list(self._get(self.config_init, "trainer.callbacks") or [])
            callbacks.append(ModelCheckpoint(root / "checkpoints", save_last=True, save_top_k=-1,
                                             every_n_train_steps=every))  # fmt: skip
            select = self._get(self.config, "select")
            if select:
                callbacks.append(ModelCheckpoint(root / "best", monitor=select, mode="max", save_top_k=1,
                                                 filename="best", auto_insert_metric_name=False))  # fmt: skip
            callbacks.append(ValidatedStep())
            kwargs["callbacks"] = callbacks
            return super().instantiate_trainer(**kwargs)

    return TrainCLI


def resume_path(resume: str | None, root: Path) -> str | None:
    if resume in (None, "", "none"):
        return None
    if resume == "auto":
        last = root / "checkpoints" / "last.ckpt"
        return str(last) if last.is_file() else None
    return resume


def train(stage: str, args: list[str]) -> int:
    from cosmos_ros.training.datamodule import VideoQADataModule
    from cosmos_ros.training.grpo import GRPOModule
    from cosmos_ros.training.sft import SFTModule

    module = {"sft": SFTModule, "grpo": GRPOModule}[stage]
    cli = _cli_class()(
        module, VideoQADataModule, args=args, run=False, save_config_kwargs={"overwrite": True},
        trainer_defaults={"use_distributed_sampler": False},
    )  # fmt: skip
    root = Path(cli.trainer.default_root_dir)
    ckpt = resume_path(cli.config.get("resume"), root)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt)
    skipped = dict(cli.datamodule.skips)
    metric = cli.config.get("select")
    final = validate_final_weights(cli.trainer, cli.model, cli.datamodule, metric)
    selected = select_best(cli.trainer, cli.model, metric, final)
    if cli.trainer.is_global_zero:
        export = Path(cli.config.get("export") or root / "export")
        cli.model.export(export)
        summary = {"exported": str(export), "skipped": skipped, "global_step": cli.trainer.global_step}
        print(json.dumps({**summary, **selected}))
    return 0


def validate_final_weights(trainer, module, datamodule, metric: str | None) -> float | None:
    """`metric` for the weights the fit ended with when no validation round saw them (the last step
    fell between rounds, or the run was stopped during that step's round); None when one did."""
    if not metric or trainer.global_step == 0:
        return None
    seen = next((c.step for c in trainer.callbacks if type(c).__name__ == "ValidatedStep"), None)
    if seen is None or seen == trainer.global_step:
        return None
    results = trainer.validate(module, datamodule=datamodule, verbose=False)
    value = results[0].get(metric) if results else None
    return None if value is None else float(value)


def _best_score(checkpoint, state: dict, metric: str) -> float | None:
    """The callback's best score; read back from the best checkpoint's own state when the callback
    lost it (a run directory moved or copied since: Lightning then restores only the path)."""
    if checkpoint.best_model_score is not None:
        return float(checkpoint.best_model_score)
    saved = [
        s for s in state.get("callbacks", {}).values() if isinstance(s, dict) and s.get("monitor") == metric
    ]
    score = next((s["best_model_score"] for s in saved if s.get("best_model_score") is not None), None)
    return None if score is None else float(score)


def select_best(trainer, module, metric: str | None, final: float | None = None) -> dict:
    """Load the weights of the best validation round of `metric` into `module` (no-op without one).

    `final` is the metric of the weights the fit ended with when no round saw them
    (`validate_final_weights`): they are kept if they beat every round.
    """
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint

    if not metric:
        return {}
    best = next((c for c in trainer.checkpoint_callbacks
                 if isinstance(c, ModelCheckpoint) and c.monitor == metric), None)  # fmt: skip
    path = best.best_model_path if best is not None else ""
    if path and not Path(path).is_file() and best.dirpath:  # the run directory was moved since
        path = str(Path(best.dirpath) / Path(path).name)
        path = path if Path(path).is_file() else ""
    # This run's own checkpoint; tensors only (weights_only), never arbitrary objects.
    state = torch.load(path, map_location="cpu", weights_only=True) if path else None
    score = _best_score(best, state, metric) if state is not None else None
    if final is not None and (score is None or final > score):
        return {"selected": {"metric": metric, "value": final, "step": int(trainer.global_step)}}
    if state is None:
        print(f"cosmos-ros train: no validation round logged {metric!r}; exporting the last weights",
              file=sys.stderr)  # fmt: skip
        return {"selected": None}
    module.load_state_dict(state["state_dict"])
    return {"selected": {"metric": metric, "value": score, "step": int(state.get("global_step", -1))}}


def evaluate(ns: argparse.Namespace) -> int:
    from cosmos_ros.training.evaluate import (
        chance,
        evaluate_engine,
        evaluate_model,
        majority,
        markdown_table,
        write_report,
    )

    names = ns.name or []
    if names and len(names) != len(ns.model):
        print("cosmos-ros eval: give one --name per --model", file=sys.stderr)
        return 2
    if ns.precision and not ns.engine:
        print("cosmos-ros eval: --precision needs --engine", file=sys.stderr)
        return 2
    results, records = {}, []
    for i, model in enumerate(ns.model):
        name = names[i] if names else Path(model).name
        samples = ns.out / f"samples_{name}.jsonl"
        if ns.engine:
            from cosmos_ros.engine.base import create_engine

            engine = create_engine(ns.engine, model, precision=ns.precision)
            results[name], records = evaluate_engine(
                engine, ns.data, ns.split, max_new_tokens=ns.max_new_tokens, depth=ns.depth, limit=ns.limit,
                samples_out=samples,
            )  # fmt: skip
            engine.close()
        else:
            results[name], records = evaluate_model(
                model, ns.data, ns.split, max_new_tokens=ns.max_new_tokens, depth=ns.depth,
                batch_size=ns.batch_size, limit=ns.limit, samples_out=samples,
            )  # fmt: skip
    if not ns.no_random and records:
        results = {"random": chance(records, ns.depth), "majority": majority(records, ns.depth), **results}
    files = write_report(results, ns.out)
    print(markdown_table(results))
    print(f"wrote {files['table']}, {files['chart']}")
    return 0


def run(ns: argparse.Namespace) -> int:
    if ns.command == "train":
        args = [a for a in ns.lightning_args if a != "--"]
        return train(ns.stage, args)
    return evaluate(ns)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m cosmos_ros.training.cli ...`)."""
    parser = argparse.ArgumentParser(prog="cosmos-ros")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
