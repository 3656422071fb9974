"""Mixed-precision training steps (SOLVER.AMP.ENABLED): bfloat16 autocast where the device
supports it, float16 with gradient scaling on GPUs that do not.

fastreid's AMPTrainer asserts CUDA and always autocasts to float16 with a GradScaler (through
`torch.cuda.amp`, which torch 2 deprecates). bfloat16 keeps float32's exponent range, so its
gradients do not underflow and need no scaling; it runs on the CPU as well, which lets the
CPU test suite run the mixed-precision step.
"""
from __future__ import annotations

import time

import torch
from fastreid.engine.train_loop import SimpleTrainer

from ..fastreid_private import data_iterator


def autocast_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 on the CPU and on GPUs that support it; float16 on older GPUs."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


class AutocastTrainer(SimpleTrainer):
    """SimpleTrainer whose forward pass and losses run under `torch.autocast(device, dtype)`;
    backward and the optimizer step stay outside it (as torch's AMP recipe says). float16
    scales the loss with a GradScaler (`grad_scaler`, checkpointed by CIFTTrainer); bfloat16
    needs none (`grad_scaler` None)."""

    def __init__(self, model, data_loader, optimizer, param_wrapper, device: torch.device,
                 dtype: torch.dtype | None = None):
        super().__init__(model, data_loader, optimizer, param_wrapper)
        self.device_type = device.type
        self.dtype = dtype or autocast_dtype(device)
        self.grad_scaler = (torch.amp.GradScaler(device.type) if self.dtype == torch.float16
                            else None)

    def run_step(self) -> None:
        assert self.model.training, "[AutocastTrainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(data_iterator(self))
        data_time = time.perf_counter() - start
        with torch.autocast(self.device_type, dtype=self.dtype):
            loss_dict = self.model(data)
            losses = sum(loss_dict.values())
        self.optimizer.zero_grad()
        if self.grad_scaler is None:
            losses.backward()
        else:
            self.grad_scaler.scale(losses).backward()
        self._write_metrics(loss_dict, data_time)
        if self.grad_scaler is None:
            self.optimizer.step()
        else:
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
