"""Tests of `cift.fastreid_private`: each accessor against fastreid's own code that writes or
reads that private state."""
from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
import torch
from fastreid.data.datasets import DATASET_REGISTRY

from cift import fastreid_private


def test_hook_parts_and_last_results_of_default_trainer_hooks() -> None:
    from fastreid.config import get_cfg
    from fastreid.engine import DefaultTrainer, hooks
    from fastreid.utils.events import EventWriter

    cfg = get_cfg()
    cfg.TEST.EVAL_PERIOD = 3
    model = torch.nn.Linear(2, 1)
    writer = EventWriter()
    trainer = SimpleNamespace(cfg=cfg, model=model, scheduler={}, checkpointer=None,
                              optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                              build_writers=lambda: [writer],
                              test=lambda cfg, model: {"metric": 7.0})
    built = DefaultTrainer.build_hooks(trainer)
    eval_hook = next(h for h in built if isinstance(h, hooks.EvalHook))
    period, evaluate = fastreid_private.eval_hook_parts(eval_hook)
    assert fastreid_private.last_eval_results(trainer) is None  # before any evaluation
    assert period == 3 and evaluate() == {"metric": 7.0}
    assert fastreid_private.last_eval_results(trainer) == {"metric": 7.0}
    periodic = next(h for h in built if isinstance(h, hooks.PeriodicWriter))
    assert fastreid_private.periodic_writer_writers(periodic) == [writer]


def test_step_trainer_runs_the_steps_from_the_iterator_set() -> None:
    from fastreid.engine import DefaultTrainer
    from fastreid.engine.train_loop import SimpleTrainer
    from fastreid.utils.events import EventStorage

    seen = []

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, batch):
            seen.append(batch)
            return {"loss": (self.w * batch).sum()}

    model = Model()
    step = SimpleTrainer(model, [], torch.optim.SGD(model.parameters(), lr=1.0), None)
    trainer = DefaultTrainer.__new__(DefaultTrainer)  # without its __init__, as CIFTTrainer
    fastreid_private.attach_step_trainer(trainer, step)
    assert fastreid_private.step_trainer(trainer) is step and trainer.model is model
    fastreid_private.set_data_iterator(step, iter([torch.tensor([2.0])]))
    with EventStorage(0):
        trainer.iter = 0
        trainer.run_step()  # DefaultTrainer.run_step delegates to the step trainer
    assert seen == [torch.tensor([2.0])] and model.w.item() == -2.0
    fastreid_private.set_data_iterator(step, None)
    with EventStorage(0), pytest.raises(TypeError):
        trainer.run_step()


def test_pending_images_and_histograms_are_the_storage_entries() -> None:
    from fastreid.utils.events import EventStorage

    with EventStorage(4) as storage:
        image = torch.zeros(3, 2, 2)
        storage.put_image("img", image)
        storage.put_histogram("h", torch.arange(4.0), bins=2)
        [(name, stored, step)] = fastreid_private.pending_images(storage)
        assert (name, stored is image, step) == ("img", True, 4)
        [histogram] = fastreid_private.pending_histograms(storage)
        assert histogram["tag"] == "h" and histogram["global_step"] == 4
        storage.clear_images()
        assert fastreid_private.pending_images(storage) == []


def test_registered_names_of_a_registry() -> None:
    from fastreid.utils.registry import Registry

    registry = Registry("probe")
    for name in ("b", "a"):
        registry.register(type(name, (), {}))
    assert fastreid_private.registered_names(registry) == ("a", "b")
    assert "SyntheticVI" in fastreid_private.registered_names(DATASET_REGISTRY)


def test_storage_is_open_inside_an_event_storage_only() -> None:
    from fastreid.utils.events import EventStorage

    assert not fastreid_private.storage_is_open()
    with EventStorage(0):
        assert fastreid_private.storage_is_open()
    assert not fastreid_private.storage_is_open()


def test_default_config_is_the_one_get_cfg_clones() -> None:
    from fastreid.config import get_cfg

    model = fastreid_private.default_config().MODEL
    device, model.DEVICE = model.DEVICE, "probe"
    try:
        assert get_cfg().MODEL.DEVICE == "probe"
    finally:
        model.DEVICE = device


def test_launch_worker_is_the_function_fastreid_spawns(monkeypatch) -> None:
    import fastreid.engine  # noqa: F401

    module = sys.modules["fastreid.engine.launch"]
    monkeypatch.setattr(module, "_distributed_worker", module._distributed_worker)
    fastreid_private.set_launch_worker(print)
    assert module._distributed_worker is print
