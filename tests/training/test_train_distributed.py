"""Two gloo processes on CPU (`accelerate launch --multi_gpu --num_processes 2`; the trainer picks
Accelerator(cpu=True) without CUDA): a few steps, and both ranks end with identical weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from training_helpers import parameter_digest, write_config

LAUNCH = Path(__file__).resolve().parent / "launch_with_backend.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_keep_identical_weights(training_data, tmp_path):
    from proteus_id.model.transformer import ProteusIDTransformer3DModel

    model, _, cache = training_data
    config = write_config(tmp_path / "ddp.yaml", model=str(model), output_dir=str(tmp_path / "run"),
                          data={"cache": str(cache)}, max_steps=3, batch_size=1,
                          checkpoint={"every_steps": 2, "keep_last": 1, "export_transformer": False})
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_ip", "127.0.0.1", "--main_process_port", str(_free_port()),
               str(LAUNCH), "--digest", str(tmp_path / "rank"), "train", "--config", str(config)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    assert rank0 == rank1
    exported = ProteusIDTransformer3DModel.from_pretrained(tmp_path / "run" / "transformer")
    assert parameter_digest(exported) == rank0
    base = ProteusIDTransformer3DModel.from_pretrained(Path(model) / "transformer")
    assert parameter_digest(base) != rank0

    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    state = json.loads((tmp_path / "run" / "checkpoints" / "checkpoint-0000003" / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and state["items_seen"] == 6  # 3 steps x 2 processes x batch 1
    ckpt = tmp_path / "run" / "checkpoints" / "checkpoint-0000003"
    assert (ckpt / "train_rng_0.pt").is_file() and (ckpt / "train_rng_1.pt").is_file()
