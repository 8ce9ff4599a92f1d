"""`synthmix` commands: the experiment grid, its report and the offline demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthmix.cli.base import app, claim_output


@app.command()
def experiment(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Experiment YAML.")],
    out: Annotated[Path | None, typer.Option(help="Run directory (default runs/<name>).")] = None,
    jobs: Annotated[int | None, typer.Option(help="Parallel fits; 0 = one per core.")] = None,
    report: Annotated[bool, typer.Option(help="Write the report when done.")] = True,
    quality: Annotated[
        bool, typer.Option(help="Also measure each source's quality metrics for the report.")
    ] = False,
    executor: Annotated[
        str | None,
        typer.Option(help="Where fits run: local (default) or ray; overrides the YAML's."),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(help="Ray cluster to join: auto or ray://head:10001 (default: a new one)."),
    ] = None,
) -> None:
    """Run the mixing grid; rerun the same command to resume after a kill."""
    from synthmix.experiment.config import load_experiment, with_executor
    from synthmix.experiment.executors import build_executor
    from synthmix.experiment.runner import measure_source_quality, run_experiment

    loaded = with_executor(load_experiment(config), executor, address)
    run_dir = out or Path("runs") / loaded.name
    claim_output(ctx, run_dir, "run directory", folder=True)
    where = build_executor(loaded.executor, jobs if jobs is not None else loaded.jobs)
    with where.session():  # one Ray start-up for the grid and the quality step
        outcome = run_experiment(loaded, run_dir, jobs=jobs, executor=where)
        typer.echo(f"{outcome.ran} fits run, {outcome.reused} reused from {run_dir}", err=True)
        if quality and loaded.data.task == "multi_label":
            from synthmix.experiment.multi_quality import measure_multilabel_source_quality

            measure_multilabel_source_quality(loaded, run_dir)
        elif quality:
            measure_source_quality(loaded, run_dir, executor=where)
    if report:
        _write_report(run_dir)


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="Experiment run directory.")],
) -> None:
    """Write report.html (self-contained) and report.md for a run directory."""
    _write_report(run_dir)


def _write_report(run_dir: Path) -> None:
    from synthmix.report import write_report

    paths = write_report(run_dir)
    typer.echo(f"report: {paths.html}")
    typer.echo(f"markdown: {paths.markdown}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's source, run and report.")] = Path(
        "runs/demo"
    ),
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per cell.")] = 3,
    jobs: Annotated[int, typer.Option(help="Parallel fits; 0 = one per core.")] = 0,
    llm_per_class: Annotated[
        int,
        typer.Option(min=0, help="Texts per class from the bundled Gemma per source; 0 = no LLM."),
    ] = 10,
    small_real_seeds: Annotated[
        int,
        typer.Option(
            min=0,
            help="Seeds of the 10%-real cells (alone and with synthetic data), when more than "
            "--seeds: their gains are small and their fits cheap.",
        ),
    ] = 10,
) -> None:
    """Run the whole pipeline offline on the shipped CEDR emotions data and write a report."""
    from synthmix.demo import run_demo

    paths = run_demo(
        out,
        seeds=seeds,
        jobs=jobs,
        llm_per_class=llm_per_class,
        small_real_seeds=small_real_seeds,
    )
    typer.echo(f"report: {paths.html}")
    typer.echo(f"markdown: {paths.markdown}")
