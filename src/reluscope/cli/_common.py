"""Options and helpers shared by every subcommand."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from .. import _progress
from .._io import write_json


def common_options(fn):
    """--seed, --device, --quiet on a command; sets up quiet mode and the seed."""

    @click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
    @click.option("--device", default="cpu", show_default=True,
                  help="Torch device to compute on (cpu, cuda, cuda:1...).")
    @click.option("--quiet", "-q", is_flag=True, help="No progress bars or chatter.")
    @functools.wraps(fn)
    def wrapper(*args, quiet: bool, seed: int, device: str, **kwargs):
        _progress.set_quiet(quiet)
        _check_device(device)
        return fn(*args, seed=seed, device=device, quiet=quiet, **kwargs)

    return wrapper


_FILE_OPTIONS = "reluscope.model_file"


def model_file_options(fn):
    """--arch and --trust-pickle: how to read the MODEL file (the architecture of a
    state_dict; whether a whole pickled module may be unpickled). `read_model` uses them."""

    @click.option("--arch", "file_arch", default=None,
                  help="Architecture of a state_dict file: mlp:W1-W2-..., cifar_cnn, resnet20, resnet18, "
                       "resnet18_imagenet (7×7 stem and max-pool, for 224×224).")
    @click.option("--trust-pickle", is_flag=True,
                  help="Allow reading a whole pickled module: this runs code named in the file, so "
                       "only for files you trust (or set RELUSCOPE_TRUST_PICKLE=1).")
    @functools.wraps(fn)
    def wrapper(*args, file_arch, trust_pickle, **kwargs):
        how = dict(arch=file_arch, trust_pickle=trust_pickle or None)  # unset: the environment decides
        click.get_current_context().meta[_FILE_OPTIONS] = how
        return fn(*args, **kwargs)

    return wrapper


def json_option(fn):
    """--json PATH: write the command's results as JSON."""
    return click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                        default=None, help="Write results as JSON to this file.")(fn)


def write_results(json_path: Path | None, results) -> None:
    if json_path is not None:
        write_json(json_path, results)
        echo(f"results written to {json_path}")


MISSING_PYARROW = "--parquet needs pyarrow: pip install 'reluscope[frames]' (or write --csv)"


def table_options(fn):
    """--csv PATH and --parquet PATH: write the results table (the result's `to_frame()`).

    The needed packages (pandas; pyarrow for Parquet) are checked before the command runs, so a
    missing one costs one line and exit status 2, not a finished analysis. The command then
    calls `write_tables(result, csv_path, parquet_path)`.
    """

    @click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Write the results table as CSV to this file (needs pandas).")
    @click.option("--parquet", "parquet_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Write the results table as Parquet to this file (needs pandas and pyarrow).")
    @functools.wraps(fn)
    def wrapper(*args, csv_path, parquet_path, **kwargs):
        _check_table_packages(csv_path, parquet_path)
        return fn(*args, csv_path=csv_path, parquet_path=parquet_path, **kwargs)

    return wrapper


def write_tables(result, csv_path: Path | None, parquet_path: Path | None) -> None:
    """Write `result`'s table (`reluscope.to_frame(result)`: a result, a list of results or of row
    dicts) as CSV and/or Parquet, atomically; None paths are skipped."""
    if csv_path is None and parquet_path is None:
        return
    import io

    from .._frames import to_frame
    from .._io import atomic_write_bytes

    _check_table_packages(csv_path, parquet_path)
    df = to_frame(result)
    if csv_path is not None:
        atomic_write_bytes(csv_path, df.to_csv(index=False).encode("utf-8"))
        echo(f"table written to {csv_path}")
    if parquet_path is not None:
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write_bytes(parquet_path, buf.getvalue())
        echo(f"table written to {parquet_path}")


def _check_table_packages(csv_path, parquet_path) -> None:
    from ..errors import DependencyError

    if csv_path is None and parquet_path is None:
        return
    from .._frames import pandas

    pandas()
    if parquet_path is not None:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise DependencyError(MISSING_PYARROW) from None


def echo(msg: str) -> None:
    """Chatter on stderr, silenced by --quiet; stdout stays for results."""
    if not _progress._quiet:
        click.echo(msg, err=True)


def _check_device(device: str) -> None:
    import torch

    from ..errors import ConfigError

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device '{device}'; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' asked for but CUDA is not available; use --device cpu")


def read_model(path: str, data=None, input_shape: str | None = None):
    """The model file at `path` and the input shape to import it with: the file's, else
    --input-shape, else the data's sample shape (None when none is known)."""
    from .. import nets

    shape = None
    if input_shape:
        try:
            shape = tuple(int(s) for s in input_shape.replace("x", ",").split(",") if s)
        except ValueError:
            from ..errors import ConfigError

            raise ConfigError(f"bad --input-shape '{input_shape}'; write e.g. 3,32,32") from None
    elif data is not None:
        shape = data.spec.shape
    ctx = click.get_current_context(silent=True)
    how = ctx.meta.get(_FILE_OPTIONS, {}) if ctx is not None else {}
    file = nets.read_model_file(path, map_location="cpu", input_shape=shape, **how)
    return file, file.input_shape or shape


def load_model(path: str, data=None, input_shape: str | None = None):
    """A Graph (a ReluNet for chains) from a model file; the input shape comes from the file,
    --input-shape or data."""
    from .. import nets

    file, shape = read_model(path, data, input_shape)
    return nets.load(file.model, input_shape=shape)


def failure_status(outcomes, what: str = "sections") -> int:
    """1 (with one line on stderr) when any section failed, else 0: the pages are written
    either way and show each failure's error."""
    failed = [o.title for o in outcomes if o.status == "failed"]
    if not failed:
        return 0
    click.echo(f"reluscope: {len(failed)} of {len(outcomes)} {what} failed ({'; '.join(failed)}); "
               "their errors are in the written pages", err=True)
    return 1
