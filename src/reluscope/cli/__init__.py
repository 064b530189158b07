"""Command line interface: `reluscope --help`."""

from ._common import (
    common_options,
    echo,
    json_option,
    load_model,
    model_file_options,
    table_options,
    write_results,
    write_tables,
)
from ._main import cli, main

__all__ = ["cli", "common_options", "echo", "json_option", "load_model", "main", "model_file_options",
           "table_options", "write_results", "write_tables"]
