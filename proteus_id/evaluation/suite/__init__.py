"""The Proteus-Bench suite: format (schema.py, schema_v1.json), our prompt set (prompts_v1.jsonl) and an example
suite file with placeholder photos (example_suite.jsonl). No photo of a real person is shipped."""

from .schema import Identity, Job, Prompt, Suite, SuiteError, builtin_prompts, load_suite

__all__ = ["Identity", "Job", "Prompt", "Suite", "SuiteError", "builtin_prompts", "load_suite"]
