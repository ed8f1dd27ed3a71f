"""The Proteus-Bench suite, format version 1: identities (a photo and who is in it) and prompts, one JSON object
per line. Paths are relative to the suite file.

    {"type": "suite", "proteus_bench": 1, "name": "my-bench", "prompts": "builtin:v1", "prompts_per_identity": 4}
    {"type": "identity", "id": "id001", "image": "photos/id001.png", "gender": "female", "profession": "chef",
     "region": "East Asia", "source": "own photo, consent on file", "licence": "CC-BY-4.0",
     "person": "a young woman", "identity_prompt": "A young woman with short black hair and a white chef's jacket"}
    {"type": "prompt", "id": "action-01", "category": "action", "text": "{person} walks slowly along ..."}
    {"type": "job", "identity": "id001", "prompt": "action-01"}            (optional: exactly these pairs)

- identity: `id`, `image`, `gender`, `profession`, `region`, `source`, `licence` are required (the report groups
  results by gender, profession and region; source and licence say where the photo may be used). `person` is the
  noun phrase put into `{person}` (default from gender: "a woman", "a man", else "a person"); `identity_prompt`
  is the short appearance text the model's MIF reads (default: the person phrase; write one for best results).
- prompt: `id`, `category` (action, scene, camera, appearance, or your own) and `text` with a `{person}` slot;
  optional `negative_prompt` (the text guidance steers away from for this prompt, `{person}` filled in as in
  `text`; default empty, as released). It only matters at a guidance scale above 1.
- header `prompts`: "builtin:v1" adds the 64 prompts shipped with the package; `prompts_per_identity` (default 4)
  picks that many prompts per identity, cycling through the categories so each identity gets one of each and
  consecutive identities get different prompts; "all" pairs every identity with every prompt.
Jobs are ordered and named `<identity id>__<prompt id>`, which is also the video's file name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ...errors import UserError

SUITE_FORMAT = 1
IDENTITY_REQUIRED = ("id", "image", "gender", "profession", "region", "source", "licence")
PROMPT_REQUIRED = ("id", "category", "text")
PERSON_BY_GENDER = {"female": "a woman", "woman": "a woman", "male": "a man", "man": "a man"}
BUILTIN_PROMPTS = {"builtin:v1": "prompts_v1.jsonl"}


class SuiteError(UserError):
    """A suite file that does not follow the format (the message names the file and line)."""


@dataclass
class Identity:
    id: str
    image: Path
    gender: str
    profession: str
    region: str
    source: str
    licence: str
    person: str
    identity_prompt: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prompt:
    id: str
    category: str
    text: str
    negative: str = ""

    def for_person(self, person: str, text: str | None = None) -> str:
        text = (self.text if text is None else text).replace("{person}", person)
        return text[0].upper() + text[1:] if text else text


@dataclass
class Job:
    identity: Identity
    prompt: Prompt

    @property
    def id(self) -> str:
        return f"{self.identity.id}__{self.prompt.id}"

    @property
    def text(self) -> str:
        return self.prompt.for_person(self.identity.person)

    @property
    def negative_text(self) -> str:
        return self.prompt.for_person(self.identity.person, self.prompt.negative)


@dataclass
class Suite:
    path: Path | None
    name: str
    identities: list[Identity]
    prompts: list[Prompt]
    prompts_per_identity: int | str = 4
    explicit_jobs: list[tuple[str, str]] = field(default_factory=list)

    def jobs(self) -> list[Job]:
        by_id = {i.id: i for i in self.identities}
        prompts = {p.id: p for p in self.prompts}
        if self.explicit_jobs:
            return [Job(by_id[i], prompts[p]) for i, p in self.explicit_jobs]
        if self.prompts_per_identity == "all":
            return [Job(i, p) for i in self.identities for p in self.prompts]
        return [Job(ident, p) for k, ident in enumerate(self.identities) for p in self._pick(k)]

    def _pick(self, k: int) -> list[Prompt]:
        """Prompts for the k-th identity: one per category in turn (so each identity gets one of each before any
        category repeats); inside a category the k-th identity starts at prompt k, so neighbours differ and every
        prompt is used about equally often."""
        categories: dict[str, list[Prompt]] = {}
        for p in self.prompts:
            categories.setdefault(p.category, []).append(p)
        count = min(int(self.prompts_per_identity), len(self.prompts))
        picks: list[Prompt] = []
        round_ = 0
        while len(picks) < count:
            for group in categories.values():
                if round_ < len(group) and len(picks) < count:
                    picks.append(group[(k + round_) % len(group)])  # distinct for round_ < len(group)
            round_ += 1
        return picks


def builtin_prompts(name: str = "builtin:v1") -> list[Prompt]:
    if name not in BUILTIN_PROMPTS:
        raise SuiteError(f"unknown built-in prompt set {name!r}; available: {', '.join(BUILTIN_PROMPTS)}")
    text = resources.files("proteus_id.evaluation.suite").joinpath(BUILTIN_PROMPTS[name]).read_text(encoding="utf-8")
    return _parse(text.splitlines(), Path(name), Path("."))[2]


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"suite file {path} does not exist")
    header, identities, prompts, jobs = _parse(path.read_text(encoding="utf-8").splitlines(), path, path.resolve().parent)
    if header.get("prompts"):
        prompts = builtin_prompts(header["prompts"]) + prompts
    if not identities:
        raise SuiteError(f"{path} has no identity lines; add {{\"type\": \"identity\", ...}} rows (see docs/evaluation.md)")
    if not prompts:
        raise SuiteError(f"{path} has no prompts; add prompt lines or \"prompts\": \"builtin:v1\" to the suite header")
    ids = [i.id for i in identities]
    if len(set(ids)) != len(ids):
        raise SuiteError(f"{path}: identity ids must be unique ({sorted({i for i in ids if ids.count(i) > 1})})")
    pids = [p.id for p in prompts]
    if len(set(pids)) != len(pids):
        raise SuiteError(f"{path}: prompt ids must be unique ({sorted({p for p in pids if pids.count(p) > 1})[:5]})")
    known_i, known_p = set(ids), set(pids)
    for ident, prompt in jobs:
        if ident not in known_i or prompt not in known_p:
            raise SuiteError(f"{path}: job ({ident}, {prompt}) names an unknown identity or prompt")
    per = header.get("prompts_per_identity", 4)
    if per != "all" and (not isinstance(per, int) or per < 1):
        raise SuiteError(f"{path}: prompts_per_identity must be a positive integer or \"all\", got {per!r}")
    return Suite(path, header.get("name", path.stem), identities, prompts, per, jobs)


def _parse(lines: list[str], path: Path, base: Path):
    header: dict[str, Any] = {}
    identities: list[Identity] = []
    prompts: list[Prompt] = []
    jobs: list[tuple[str, str]] = []
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            raise SuiteError(f"{path}:{lineno}: not valid JSON ({err.msg})") from err
        kind = data.get("type") if isinstance(data, dict) else None
        where = f"{path}:{lineno}"
        if kind == "suite":
            if data.get("proteus_bench") != SUITE_FORMAT:
                raise SuiteError(f"{where}: suite format {data.get('proteus_bench')!r}; this version reads {SUITE_FORMAT}")
            header = data
        elif kind == "identity":
            _require(data, IDENTITY_REQUIRED, where)
            image = Path(data["image"]).expanduser()
            gender = str(data["gender"])
            person = data.get("person") or PERSON_BY_GENDER.get(gender.lower(), "a person")
            known = set(IDENTITY_REQUIRED) | {"type", "person", "identity_prompt"}
            identities.append(Identity(
                id=str(data["id"]), image=image if image.is_absolute() else base / image, gender=gender,
                profession=str(data["profession"]), region=str(data["region"]), source=str(data["source"]),
                licence=str(data["licence"]), person=person, identity_prompt=data.get("identity_prompt") or person,
                extra={k: v for k, v in data.items() if k not in known},
            ))
        elif kind == "prompt":
            _require(data, PROMPT_REQUIRED, where)
            if "{person}" not in data["text"]:
                raise SuiteError(f"{where}: prompt {data['id']!r} has no {{person}} slot for the identity")
            negative = data.get("negative_prompt") or ""
            if not isinstance(negative, str):
                raise SuiteError(f"{where}: negative_prompt of prompt {data['id']!r} must be a string")
            prompts.append(Prompt(str(data["id"]), str(data["category"]), str(data["text"]), negative))
        elif kind == "job":
            _require(data, ("identity", "prompt"), where)
            jobs.append((str(data["identity"]), str(data["prompt"])))
        else:
            raise SuiteError(f"{where}: \"type\" must be suite, identity, prompt or job, got {kind!r}")
    return header, identities, prompts, jobs


def _require(data: dict, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if data.get(k) in (None, "")]
    if missing:
        raise SuiteError(f"{where}: {data.get('type')} line lacks {', '.join(missing)}")
