"""Benchmark data: one uniform `Example` record and loaders for each dataset's native files.

    from softcot.data import load_examples, target_text
    train = load_examples("gsm8k", "data/gsm8k/train.jsonl")
    test = load_examples("strategyqa", "data/strategyqa/strategyqa_train.json", split="test")
    target_text(train[0])  # "## Step 1: ...\\nThe answer is \\\\boxed{72}."

Sources (`path`), chosen by form, not by task:
    *.jsonl / *.json   JSON Lines, a JSON array, or a BIG-bench/BBH object with "examples".
                       JSON Lines that do not parse line by line (records with raw newlines, as in
                       the published ASDiv-Aug file) are re-read tolerantly: records are split at
                       a newline followed by `{"` and inner newlines escaped (with a DataWarning).
    *.xml              the original ASDiv.xml.
    *.parquet          rows with the native field names (read with `datasets`).
    "hf:NAME[:CONFIG]" a Hugging Face dataset via `datasets.load_dataset(NAME, CONFIG, split=split)`.

Records per task (gold answers normalised as in `softcot.scoring`):
    gsm8k, miniworld, asdiv-aug  `question`, `answer` ending in "#### N" (or "####N"); steps are
        the answer's lines before it, with a Socratic " ** " sub-question prefix removed (kept in
        meta["subquestions"]) and calculator annotations "<<48/2=24>>" removed (`strip_calc`);
        a line that is only an annotation (ASDiv-Aug) becomes its content "48/2=24".
    asdiv  ASDiv.xml problems: Body + Question; Answer "9 (apples)" -> "9"; steps = [Formula].
        Answers that are not one number (ratios, times, "a; b", words, non-terminating fractions)
        are skipped and counted in one DataWarning; terminating fractions are kept (5/2 -> 2.5).
        JSON-lines files in the GSM8K form are also accepted under this task.
    aqua   `question`, `options` ["A)12", ...] -> ["A) 12", ...], `correct`, steps = rationale lines.
    strategyqa  `question`, boolean `answer` -> "yes"/"no", steps = `facts` (eladsegal files too).
    date   BBH {"examples": [{input, target}]}: options split off "\\nOptions:\\n(A) ..."; target
        "(B)" -> "B". BIG-bench task.json {"examples": [{input, target_scores}]}: options are
        shuffled per example with random.Random(f"{seed}:{index}") (the correct one is listed first
        in the file almost always), gold = the letter of the score-1 option.

`split` (local files and parquet): which part of the file, by file order:
    None or "all"           every record
    "train" / "test"        StrategyQA only: the paper's split, first int(0.8 * n) / the rest
    "train:F" / "test:F"    any task: first int(F * n) / the rest, 0 < F < 1 ("train:0.9");
                            int(F * n) in floating point, like the paper's int(0.8 * n)
Other tasks' files are already one split, so a bare "train"/"test" is an error there. For
"hf:" sources `split` is the Hugging Face split and may use its slicing ("train[:80%]").
`limit` then keeps the first `limit` examples of the chosen part.

Malformed data raises DataError (a ValueError) with a one-line message naming the file, the
line/item and what was expected; data read other than as published gives a DataWarning.
"""
from __future__ import annotations

import json
import math
import random
import re
import tempfile
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from softcot.scoring import normalize_number
from softcot.tasks import TASKS

LETTERS = "ABCDEFGHIJ"
PAPER_TRAIN_FRACTION = 0.8  # StrategyQA: first 80 % train, last 20 % test, by file order


@dataclass
class Example:
    """One benchmark item, the same shape for every task.

    id:       stable identifier (file stem + index, or the dataset's own id)
    task:     task name ("gsm8k", "asdiv", "aqua", "strategyqa", "date", "miniworld", ...)
    question: the question text, without the options
    answer:   gold answer, normalised: "18", "-3.5", "B", "yes"/"no"
    options:  ["A) 12", "B) 15", ...] for multiple choice, else None
    steps:    rationale steps (one string per step) when the dataset has them, else None
    """

    id: str
    task: str
    question: str
    answer: str
    options: list[str] | None = None
    steps: list[str] | None = None
    meta: dict = field(default_factory=dict)


class DataError(ValueError):
    """A data file that cannot be read as the task's format; the message names file and place."""


class DataWarning(UserWarning):
    """Data was read, but not as published (tolerant JSONL parse, skipped items)."""


# --------------------------------------------------------------------------- text helpers


def strip_calculator(text: str) -> str:
    """Remove GSM8K calculator annotations: "48/2 = <<48/2=24>>24" -> "48/2 = 24"."""
    return re.sub(r"<<[^<>]*>>", "", text)


def target_text(example: Example) -> str:
    """The training target: "## Step 1: ...\\n## Step 2: ...\\nThe answer is \\\\boxed{ANSWER}."
    (only the final sentence when there are no steps)."""
    steps = [s.strip() for s in example.steps or [] if s and s.strip()]
    lines = [f"## Step {i}: {s}" for i, s in enumerate(steps, 1)]
    lines.append(f"The answer is \\boxed{{{example.answer}}}.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- raw records

Record = tuple[str, Any]  # (where: "line 5" / "item 3" / "row 0", parsed record)


def _read_text(path: Path) -> str:
    if path.is_dir():
        raise DataError(f"{path}: is a folder; expected a data file ({_expected(path)})")
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}); expected {_expected(path)}") from None
    if not text.strip():
        raise DataError(f"{path}: file is empty; expected {_expected(path)}")
    return text


def _expected(path: Path) -> str:
    return "XML with <Problem> elements" if path.suffix == ".xml" else "JSON records"


def _read_json_records(path: Path) -> list[Record]:
    """Records of a .json/.jsonl file: a JSON array, an object with "examples", or JSON Lines."""
    text = _read_text(path)
    head = text.lstrip()[:1]
    if head in "[{":
        try:
            data = json.loads(text)
        except RecursionError:
            raise DataError(f"{path}: JSON nested too deeply; expected {_expected(path)}") from None
        except json.JSONDecodeError as e:
            if head == "[":
                raise DataError(
                    f"{path}: line {e.lineno}: invalid JSON ({e.msg}); expected a JSON array of objects"
                ) from None
            data = None  # JSON Lines (or broken): read line by line below
        if isinstance(data, list):
            return [(f"item {i}", r) for i, r in enumerate(data)]
        if isinstance(data, dict) and isinstance(data.get("examples"), list):
            return [(f"example {i}", r) for i, r in enumerate(data["examples"])]
        if isinstance(data, dict):
            return [("line 1", data)]
        if data is not None:
            raise DataError(f"{path}: expected a JSON array, an object or JSON Lines, got {type(data).__name__}")
    return _read_jsonl(path, text)


def _read_jsonl(path: Path, text: str) -> list[Record]:
    """JSON Lines, strictly; if a line fails, tolerantly (raw newlines inside records)."""
    out: list[Record] = []
    first_error = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((f"line {n}", json.loads(line)))
        except RecursionError:
            raise DataError(f"{path}: line {n}: JSON nested too deeply; expected one JSON object per line") from None
        except json.JSONDecodeError as e:
            first_error = (n, e.msg)
            break
    if first_error is None:
        return out
    # Tolerant pass: a record starts at a line beginning with '{"'; inner newlines are escaped.
    out, line_no = [], 1
    for chunk in re.split(r"\n(?=\{\")", text):
        if chunk.strip():
            try:
                out.append((f"line {line_no}", json.loads(chunk.strip().replace("\r", "").replace("\n", "\\n"))))
            except (json.JSONDecodeError, RecursionError) as e:
                msg = e.msg if isinstance(e, json.JSONDecodeError) else "nested too deeply"
                raise DataError(
                    f"{path}: line {line_no}: invalid JSON ({msg}); expected one JSON object per line"
                ) from None
        line_no += chunk.count("\n") + 1
    warnings.warn(
        f"{path}: not valid JSON Lines (line {first_error[0]}: {first_error[1]}); read {len(out)} "
        "records by splitting at newlines followed by '{\"' (raw newlines inside records)",
        DataWarning,
        stacklevel=4,
    )
    return out


def _read_asdiv_xml(path: Path) -> list[Record]:
    text = _read_text(path)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        line = e.position[0] if getattr(e, "position", None) else "?"
        raise DataError(f"{path}: line {line}: invalid XML ({e}); expected ASDiv.xml") from None
    problems = list(root.iter("Problem"))
    if not problems:
        raise DataError(f"{path}: no <Problem> elements; expected ASDiv.xml")
    out = []
    for i, p in enumerate(problems):
        rec = {child.tag: (child.text or "").strip() for child in p}
        rec.update({f"@{k}": v for k, v in p.attrib.items()})
        out.append((f"problem {p.get('ID', i)} (#{i})", rec))
    return out


def _read_parquet(path: Path) -> list[Record]:
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    import datasets  # lazy: importing it takes a second

    # A throw-away cache: a local file needs no Arrow copy under ~/.cache, nor a stale one.
    with tempfile.TemporaryDirectory(prefix="softcot-parquet-") as cache:
        try:
            rows = datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=cache).to_list()
        except Exception as e:  # noqa: BLE001 - pyarrow/datasets raise many types on a broken file
            raise DataError(f"{path}: not a readable parquet file ({_first_line(e)})") from None
    if not rows:
        raise DataError(f"{path}: parquet file has no rows")
    return [(f"row {i}", r) for i, r in enumerate(rows)]


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def _read_hf(spec: str, split: str | None) -> list[Record]:
    name, _, config = spec[3:].partition(":")
    if not name:
        raise DataError(f"bad source {spec!r}; expected 'hf:NAME' or 'hf:NAME:CONFIG'")
    if not split:
        raise DataError(f"{spec}: a Hugging Face source needs split= (e.g. 'test' or 'train[:80%]')")
    import datasets

    try:
        ds = datasets.load_dataset(name, config or None, split=split)
    except Exception as e:  # noqa: BLE001 - offline, unknown name, bad split: one line
        raise DataError(f"{spec}: cannot load the Hugging Face dataset (split {split!r}): {_first_line(e)}") from None
    return [(f"{split} row {i}", r) for i, r in enumerate(ds)]


# --------------------------------------------------------------------------- record -> Example


class _Ctx:
    """Where a record came from, for ids and error messages."""

    def __init__(self, source: str, stem: str, task: str, seed: int, strip_calc: bool):
        self.source, self.stem, self.task, self.seed, self.strip_calc = source, stem, task, seed, strip_calc

    def fail(self, where: str, msg: str) -> DataError:
        return DataError(f"{self.source}: {where}: {msg}")

    def get(self, rec: Any, where: str, *keys: str) -> Any:
        """The first present field among `keys` (aliases), or a DataError naming it."""
        if not isinstance(rec, dict):
            raise self.fail(where, f"expected a JSON object, got {type(rec).__name__}")
        for k in keys:
            if k in rec and rec[k] is not None:
                return rec[k]
        raise self.fail(where, f"missing required field {keys[0]!r}")

    def get_str(self, rec: Any, where: str, *keys: str) -> str:
        value = self.get(rec, where, *keys)
        if not isinstance(value, str):
            raise self.fail(where, f"field {keys[0]!r} should be a string, got {type(value).__name__}")
        return value

    def default_id(self, index: int) -> str:
        return f"{self.task}/{self.stem}-{index}"


def _gsm8k_like(rec: Any, where: str, index: int, ctx: _Ctx) -> Example:
    question = ctx.get_str(rec, where, "question")
    answer = ctx.get_str(rec, where, "answer")
    lines = answer.strip().split("\n")
    m = re.fullmatch(r"####\s*(.*?)\s*", lines[-1])
    if not m:
        raise ctx.fail(where, "field 'answer' should end with a line '#### <number>'")
    gold = normalize_number(m.group(1))
    if gold is None:
        raise ctx.fail(where, f"cannot parse the gold answer {m.group(1)!r} as a number")
    steps, subquestions = [], []
    for line in lines[:-1]:
        if " ** " in line:  # Socratic: "Sub-question? ** step"
            sub, line = line.split(" ** ", 1)
            subquestions.append(sub.strip())
        line = line.strip()
        if ctx.strip_calc:
            only = re.fullmatch(r"<<([^<>]*)>>", line)
            line = only.group(1) if only else strip_calculator(line).strip()
        if line:
            steps.append(line)
    meta: dict = {"index": index}
    if subquestions:
        meta["subquestions"] = subquestions
    return Example(ctx.default_id(index), ctx.task, question.strip(), gold, None, steps or None, meta)


_ASDIV_NUMBER = re.compile(r"-?\d+(?:\.\d+)?|-?\d+/\d+")


def asdiv_answer(text: str) -> str | None:
    """The number in an ASDiv Answer ("9 (apples)" -> "9", "5/2" -> "2.5"), or None when the
    answer is not a single number (ratios "3:4", times, "11; 12", words, "25/3")."""
    value = re.sub(r"\s+\([^()]*\)\s*$", "", text.strip()).strip()
    if not _ASDIV_NUMBER.fullmatch(value):
        return None
    if "/" in value:
        num, den = (int(x) for x in value.split("/"))
        if den == 0:
            return None
        d = den // math.gcd(num, den)
        while d % 2 == 0:
            d //= 2
        while d % 5 == 0:
            d //= 5
        if d != 1:  # non-terminating decimal: no unambiguous written form
            return None
    return normalize_number(value)


def _asdiv(rec: Any, where: str, index: int, ctx: _Ctx) -> Example | None:
    if isinstance(rec, dict) and "answer" in rec and "Answer" not in rec and "body" not in rec:
        return _gsm8k_like(rec, where, index, ctx)  # ASDiv-Aug style JSON lines
    body = ctx.get(rec, where, "Body", "body")
    question = ctx.get(rec, where, "Question", "question")
    raw = str(ctx.get(rec, where, "Answer", "answer"))
    gold = asdiv_answer(raw)
    if gold is None:
        return None
    formula = str(rec.get("Formula") or rec.get("formula") or "").strip()
    pid = rec.get("@ID") or ctx.default_id(index)
    meta = {"index": index, "raw_answer": raw}
    for key in ("@Grade", "Solution-Type", "solution_type", "grade"):
        if rec.get(key):
            meta[key.lstrip("@").lower().replace("-", "_")] = rec[key]
    text = f"{str(body).strip()} {str(question).strip()}".strip()
    return Example(str(pid), ctx.task, text, gold, None, [formula] if formula else None, meta)


def _format_options(raw: Iterable[str], where: str, ctx: _Ctx) -> list[str]:
    """Options as "A) text", from "A)12", "(A) 12" or plain texts (lettered by position)."""
    raw = list(raw)
    if len(raw) > len(LETTERS):
        raise ctx.fail(where, f"{len(raw)} options; at most {len(LETTERS)} are supported")
    out = []
    for i, opt in enumerate(raw):
        if not isinstance(opt, str):
            raise ctx.fail(where, f"option {i} should be a string, got {type(opt).__name__}")
        m = re.match(r"\s*\(?([A-Za-z])\s*\)\s*(.*)", opt, re.S)
        letter, text = (m.group(1).upper(), m.group(2)) if m else (LETTERS[i], opt)
        if letter != LETTERS[i]:
            raise ctx.fail(where, f"option {i} is lettered {letter!r}, expected {LETTERS[i]!r}")
        out.append(f"{letter}) {text.strip()}")
    if not out:
        raise ctx.fail(where, "no options")
    return out


def _gold_letter(value: Any, options: list[str], where: str, ctx: _Ctx) -> str:
    m = re.fullmatch(r"\s*\(?([A-Za-z])\)?\s*", str(value))
    if not m or m.group(1).upper() not in LETTERS[: len(options)]:
        raise ctx.fail(
            where, f"cannot parse the gold answer {value!r}; expected one of {LETTERS[: len(options)]}"
        )
    return m.group(1).upper()


def _aqua(rec: Any, where: str, index: int, ctx: _Ctx) -> Example:
    question = ctx.get_str(rec, where, "question")
    raw_options = ctx.get(rec, where, "options")
    if not isinstance(raw_options, list):
        raise ctx.fail(where, "field 'options' should be a list of strings")
    options = _format_options(raw_options, where, ctx)
    gold = _gold_letter(ctx.get(rec, where, "correct"), options, where, ctx)
    rationale = rec.get("rationale") or ""
    steps = [s.strip() for s in str(rationale).split("\n") if s.strip()]
    return Example(ctx.default_id(index), ctx.task, question.strip(), gold, options, steps or None,
                   {"index": index})


def _strategyqa(rec: Any, where: str, index: int, ctx: _Ctx) -> Example:
    question = ctx.get_str(rec, where, "question")
    value = ctx.get(rec, where, "answer")
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
        value = value.strip().lower() in ("true", "yes")
    if not isinstance(value, bool):
        raise ctx.fail(where, f"cannot parse the gold answer {value!r}; expected true/false")
    facts = rec.get("facts") or []
    if isinstance(facts, str):
        facts = [facts]
    if not isinstance(facts, list):
        raise ctx.fail(where, f"field 'facts' should be a list of strings, got {type(facts).__name__}")
    steps = [str(f).strip() for f in facts if str(f).strip()]
    meta = {"index": index}
    for key in ("term", "description", "decomposition"):
        if rec.get(key):
            meta[key] = rec[key]
    qid = rec.get("qid") or ctx.default_id(index)
    return Example(str(qid), ctx.task, question.strip(), "yes" if value else "no", None,
                   steps or None, meta)


def _date(rec: Any, where: str, index: int, ctx: _Ctx) -> Example:
    text = ctx.get_str(rec, where, "input")
    if isinstance(rec, dict) and "target_scores" in rec:
        return _date_bigbench(rec, text, where, index, ctx)
    question, sep, rest = text.partition("\nOptions:\n")
    if not sep:
        raise ctx.fail(where, "field 'input' has no '\\nOptions:\\n(A) ...' block")
    raw = [line for line in rest.split("\n") if line.strip()]
    if not all(re.match(r"\s*\([A-Za-z]\)", line) for line in raw):
        raise ctx.fail(where, "options should be lines '(A) text'")
    options = _format_options(raw, where, ctx)
    gold = _gold_letter(ctx.get(rec, where, "target"), options, where, ctx)
    return Example(ctx.default_id(index), ctx.task, question.strip(), gold, options, None,
                   {"index": index, "format": "bbh"})


def _date_bigbench(rec: dict, text: str, where: str, index: int, ctx: _Ctx) -> Example:
    scores = rec["target_scores"]
    if not isinstance(scores, dict) or not scores:
        raise ctx.fail(where, "field 'target_scores' should be a non-empty object {option: score}")
    correct = [k for k, v in scores.items() if v == 1]
    if len(correct) != 1:
        raise ctx.fail(where, f"cannot parse the gold answer: {len(correct)} options have score 1, expected 1")
    texts = list(scores)
    if len(texts) > len(LETTERS):
        raise ctx.fail(where, f"{len(texts)} options; at most {len(LETTERS)} are supported")
    random.Random(f"{ctx.seed}:{index}").shuffle(texts)
    options = [f"{LETTERS[i]}) {t.strip()}" for i, t in enumerate(texts)]
    gold = LETTERS[texts.index(correct[0])]
    meta = {"index": index, "format": "bigbench", "shuffle_seed": ctx.seed,
            "gold_position_in_file": list(scores).index(correct[0])}
    return Example(ctx.default_id(index), ctx.task, text.strip(), gold, options, None, meta)


# Record parsers by format name; `softcot.tasks.TASKS` says which one each task uses.
PARSERS: dict[str, Callable[[Any, str, int, _Ctx], Example | None]] = {
    "gsm8k": _gsm8k_like,
    "asdiv": _asdiv,
    "aqua": _aqua,
    "strategyqa": _strategyqa,
    "date": _date,
}


# --------------------------------------------------------------------------- entry point


def parse_split(split: str | None, task: str) -> tuple[str, float | None]:
    """("all", None), ("train", F) or ("test", F) from the `split` argument (see module doc)."""
    if split is None or split == "all":
        return "all", None
    part, _, frac = split.partition(":")
    if part not in ("train", "test"):
        raise DataError(f"unknown split {split!r}; expected 'all', 'train', 'test', 'train:F' or 'test:F'")
    if not frac:
        if not (task in TASKS and TASKS[task].own_splits):
            raise DataError(
                f"split {split!r}: {task} files are already one split; use split=None, "
                f"or an explicit fraction such as '{part}:0.9' to cut the file by order"
            )
        return part, PAPER_TRAIN_FRACTION
    try:
        f = float(frac)
    except ValueError:
        f = -1.0
    if not 0.0 < f < 1.0:
        raise DataError(f"split {split!r}: the fraction must be a number strictly between 0 and 1")
    return part, f


def load_examples(
    task: str,
    path: str | Path,
    *,
    split: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    strip_calc: bool = True,
) -> list[Example]:
    """Load a task's examples from a native file, a parquet file or "hf:NAME[:CONFIG]".

    task:       one of softcot.tasks.TASKS ("gsm8k", "aqua", "strategyqa", ...)
    split:      see the module docstring ("train", "test", "train:0.9", HF split names)
    limit:      keep only the first `limit` examples (after the split)
    seed:       shuffles BIG-bench Date Understanding options (deterministic per example)
    strip_calc: remove GSM8K "<<a*b=c>>" calculator annotations from the steps
    Raises DataError (a ValueError) with file and line/item for malformed data.
    """
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; known tasks: {', '.join(sorted(TASKS))}")
    if limit is not None and limit < 0:
        raise DataError(f"limit must be >= 0, got {limit}")
    spec = str(path)
    if spec.startswith("hf:"):
        records = _read_hf(spec, split)
        part, frac = "all", None
        ctx = _Ctx(spec, f"{spec[3:].replace('/', '_')}-{split}", task, seed, strip_calc)
    else:
        part, frac = parse_split(split, task)
        p = Path(path)
        if p.suffix == ".xml":
            if TASKS[task].parser != "asdiv":
                raise DataError(f"{p}: XML is only read for the ASDiv tasks, not {task!r}")
            records = _read_asdiv_xml(p)
        elif p.suffix == ".parquet":
            records = _read_parquet(p)
        else:
            records = _read_json_records(p)
        ctx = _Ctx(str(p), p.stem, task, seed, strip_calc)
    if not records:
        raise DataError(f"{ctx.source}: no records found")

    parse = PARSERS[TASKS[task].parser]
    examples, skipped = [], []
    for index, (where, rec) in enumerate(records):
        try:
            ex = parse(rec, where, index, ctx)
        except DataError:
            raise
        except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as e:
            # a record shape no parser check foresaw still ends in one line naming file and place
            raise ctx.fail(where, f"unreadable record ({type(e).__name__}: {_first_line(e)})") from None
        if ex is None:
            skipped.append(where)
        elif not ex.question.strip():
            raise ctx.fail(where, "field 'question' is empty or whitespace-only; expected the question text")
        else:
            examples.append(ex)
    if skipped:
        warnings.warn(
            f"{ctx.source}: skipped {len(skipped)} of {len(records)} items whose answer is not a "
            f"single number (first: {skipped[0]})",
            DataWarning,
            stacklevel=2,
        )
    if frac is not None:
        cut = int(frac * len(examples))
        examples = examples[:cut] if part == "train" else examples[cut:]
    for ex in examples:
        ex.meta.setdefault("source", ctx.source)
    return examples if limit is None else examples[:limit]
