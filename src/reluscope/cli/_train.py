"""`reluscope train`: train a built-in architecture and save a checkpoint."""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path

import click

from ._common import common_options, echo, json_option, table_options, write_results, write_tables


@click.command()
@click.option("--data", default="digits", show_default=True,
              help="digits, a folder of MNIST IDX files, an ImageFolder tree, sparse-codes, "
              "torchvision:NAME.")
@click.option("--arch", default="mlp:256-256", show_default=True,
              help="mlp:H1-H2-... (hidden widths), mlp:IN-H1-...-OUT, cifar_cnn, resnet20 or resnet18.")
@click.option("--epochs", type=int, default=30, show_default=True)
@click.option("--lr", type=float, default=0.05, show_default=True)
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default="sgd", show_default=True)
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--dropout", type=float, default=0.0, show_default=True, help="Dropout after hidden layers.")
@click.option("--shadow", "shadow_spec", default=None,
              help="SHADOW augmentation, e.g. layer=-2,rho=0.5,ratio=1.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("model.pt"),
              show_default=True, help="Checkpoint path (rewritten after every epoch).")
@json_option
@table_options
@common_options
def train(data, arch, epochs, lr, optimizer, weight_decay, batch_size, dropout, shadow_spec, out,
          json_path, csv_path, parquet_path, seed, device, quiet):
    """Train ARCH on DATA and save a checkpoint that every analysis reads."""
    import torch

    from .. import nets
    from ..data import load as load_data
    from ..train import TrainConfig
    from ..train import train as run_training

    ds = load_data(data, seed=seed)
    config = TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer, weight_decay=weight_decay,
                         batch_size=batch_size, seed=seed, device=device)
    torch.manual_seed(seed)
    model = nets.build(arch, ds.spec.shape, ds.spec.classes, dropout=dropout)
    init = copy.deepcopy(model)
    augment = None
    if shadow_spec:
        from ..shadow import ShadowAugment

        augment = ShadowAugment.from_spec(model, shadow_spec, seed=seed, input_shape=ds.spec.shape)
    def save(result) -> None:  # after every epoch: an interrupted run loses nothing
        nets.save_checkpoint(out, result.model, arch, ds.spec.shape, ds.spec.classes, dropout,
                             init_model=init, history=result.history, config=asdict(config),
                             data=ds.spec.to_dict())

    echo(f"training {arch} on {ds} for {epochs} epochs")
    result = run_training(model, ds, config, augment=augment, on_epoch=save)
    save(result)
    if result.final:
        click.echo(f"test accuracy {result.final['test_acc']:.4f}, "
                   f"train accuracy {result.final['train_acc']:.4f}")
    echo(f"checkpoint written to {out}")
    write_results(json_path, result)
    write_tables(result, csv_path, parquet_path)
