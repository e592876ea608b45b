"""`prefkit validate-labeler`: agreement of a labeler with reference preference labels, before building on it."""

from __future__ import annotations

import json

import typer


def render_validation(report: dict) -> str:
    """The report as a few readable lines (intervals in brackets)."""
    return "\n".join(
        [
            f"labeler {report['labeler']} on {report['n_pairs']} reference pairs ({report['reference']})",
            f"  agreement    {report['agreement']:.3f}  [{report['agreement_low']:.3f}, "
            f"{report['agreement_high']:.3f}]  ({report['confidence']:.0%} bootstrap)",
            f"  Cohen kappa  {report['kappa']:.3f}  [{report['kappa_low']:.3f}, {report['kappa_high']:.3f}]",
            f"  ties         {report['tie_rate']:.3f}  (reference {report['reference_tie_rate']:.3f})",
            f"  length bias  {report['length_bias']:+.3f}  (longer-wins share, labeler minus reference)",
            f"  time         {report['seconds']:.1f} s",
        ]
    )


def register(app: typer.Typer) -> None:
    @app.command("validate-labeler")
    def validate_labeler_command(
        labeler: str = typer.Option("vader", help="Labeler plugin, as in `prefkit label`."),
        labeler_options: str = typer.Option(None, "--labeler-options", help="Labeler options as JSON."),
        reference: str = typer.Option(
            "builtin",
            help="Reference labels: 'builtin' (192 AlpacaEval 2 pairs judged by GPT-4 Turbo), a JSONL of "
            "prompt/first/second/second_preferred, or a preference file or artifact (chosen/rejected).",
        ),
        max_pairs: int = typer.Option(None, help="Use only the first N reference pairs."),
        resamples: int = typer.Option(1000, help="Bootstrap resamples for the intervals."),
        seed: int = typer.Option(0, help="Seed for pair order (chosen/rejected files) and the bootstrap."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Measure a labeler against reference preferences: agreement, Cohen's kappa, ties, length bias."""
        from prefkit.evaluation.labeler_validation import validate_labeler
        from prefkit.labeling.stage import parse_labeler_options

        report = validate_labeler(
            labeler,
            parse_labeler_options(labeler_options),
            reference,
            max_pairs=max_pairs,
            resamples=resamples,
            seed=seed,
        )
        typer.echo(json.dumps(report, indent=2) if as_json else render_validation(report))
