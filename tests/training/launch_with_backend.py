"""Subprocess entry for the training tests: the tiny test backend registered, then a proteus-id command.

    python tests/training/launch_with_backend.py precompute ...          (any proteus-id command line)
    accelerate launch ... tests/training/launch_with_backend.py --digest OUT_PREFIX train --config C.yaml
        after training, every process writes OUT_PREFIX<rank>.json with a digest of its transformer's weights
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from training_helpers import parameter_digest, register  # noqa: E402


def main(argv: list[str]) -> int:
    register()
    digest = None
    if argv[:1] == ["--digest"]:
        digest, argv = argv[1], argv[2:]
    if digest is None:
        from proteus_id.cli.main import main as cli_main

        return cli_main(argv)
    from proteus_id.training import trainer

    captured = {}
    original = trainer.export_transformer

    def export_and_capture(accelerator, model, path, lora=False):
        captured["rank"] = accelerator.process_index
        captured["digest"] = parameter_digest(accelerator.unwrap_model(model))
        return original(accelerator, model, path, lora=lora)

    trainer.export_transformer = export_and_capture
    from proteus_id.cli.main import main as cli_main

    code = cli_main(argv)
    Path(f"{digest}{captured['rank']}.json").write_text(json.dumps(captured["digest"]))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
