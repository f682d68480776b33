"""The framework integrations with the real frameworks on CPU, tiny models built from code (nothing is
downloaded), logging to a real `ptw serve`: a Lightning Trainer with PtwLogger and a transformers Trainer
with PtwCallback each end in a SUCCEEDED external run holding their metrics, hyperparameters and
checkpoints. Skipped where the extras (`pip install 'pytorch-workflow[lightning,transformers]'`) are not."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.e2e.conftest import Server

RUNS = """{ runs(first: 20) { edges { node { id name status external summary params metricKeys
  latestMetrics { key step } } } } }"""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("ptw-integrations"), executors=0)
    try:
        yield srv
    finally:
        srv.stop()


def run_named(server: Server, name: str) -> dict[str, Any]:
    runs = asyncio.run(server.client().execute(RUNS))["runs"]["edges"]
    [found] = [e["node"] for e in runs if e["node"]["name"] == name]
    return dict(found)


@pytest.mark.filterwarnings("ignore")  # the framework's own advice (dataloader workers, ...)
def test_a_lightning_trainer_logs_through_ptw_logger(api: Server, tmp_path: Path) -> None:
    lightning = pytest.importorskip("lightning.pytorch")
    from ptw.integrations.lightning import PtwLogger

    class Tiny(lightning.LightningModule):
        def __init__(self, lr: float = 0.05, hidden: int = 8) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
            )

        def training_step(self, batch: Any, index: int) -> torch.Tensor:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch: Any, index: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    logger = PtwLogger(name="lightning-tiny", tags=["lightning"], url=api.url, api_key=api.key)
    checkpoints = lightning.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_last=True)
    trainer = lightning.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=logger,
        callbacks=[checkpoints],
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(Tiny(), loader, loader)
    run = run_named(api, "lightning-tiny")
    assert run["status"] == "SUCCEEDED" and run["external"]
    assert {"train_loss", "val_loss", "epoch"} <= set(run["metricKeys"])
    assert run["summary"]["hparams"] == {"lr": 0.05, "hidden": 8}
    assert run["summary"]["best_checkpoint"].endswith(".ckpt") and run["summary"]["checkpoints"]
    latest = {p["key"]: p["step"] for p in run["latestMetrics"]}
    assert latest["train_loss"] == trainer.global_step - 1


@pytest.mark.filterwarnings("ignore")
def test_a_transformers_trainer_logs_through_ptw_callback(api: Server, tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    from ptw.integrations.transformers import PtwCallback

    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=32, n_positions=16, n_embd=16, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0
    )
    model = transformers.GPT2LMHeadModel(config)
    ids = torch.randint(0, 32, (24, 16))
    train = [{"input_ids": row, "labels": row} for row in ids]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=6,
        per_device_train_batch_size=4,
        logging_steps=1,
        save_steps=3,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        learning_rate=1e-3,
    )
    callback = PtwCallback(name="transformers-tiny", tags=["hf"], url=api.url, api_key=api.key)
    transformers.Trainer(model=model, args=args, train_dataset=train, callbacks=[callback]).train()
    run = run_named(api, "transformers-tiny")
    assert run["status"] == "SUCCEEDED" and run["external"]
    assert "loss" in run["metricKeys"] and "learning_rate" in run["metricKeys"]
    assert {p["key"]: p["step"] for p in run["latestMetrics"]}["loss"] == 6
    assert run["params"]["learning_rate"] == 1e-3 and run["params"]["model"]["n_layer"] == 1
    assert [c["step"] for c in run["summary"]["checkpoints"]] == [3, 6]
    assert run["summary"]["global_step"] == 6
