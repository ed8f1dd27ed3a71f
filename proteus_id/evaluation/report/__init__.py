"""The evaluation report: Markdown and one self-contained HTML page (plots and contact sheets embedded)."""
