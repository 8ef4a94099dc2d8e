"""The task registry: everything softcot knows about a benchmark, in one entry.

    from softcot.tasks import get_task
    task = get_task("gsm8k")
    task.family, task.parser, task.instruction      # "numeric", "gsm8k", "Solve the problem ..."

This module is the ground floor: it imports nothing from the package. The loaders
(`softcot.data`: `parser` names a record parser there), the prompts (`softcot.prompts`: the
instructions) and the scorer (`softcot.scoring`: the family's answer normaliser and extractor)
all read from it, so adding a task is one `Task(...)` line here, plus a parser in `data.py` when
its file format is new.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """What a kind of answer looks like. `answer` names the normaliser in `softcot.scoring`."""

    name: str
    answer: str  # "number" | "letter" | "yesno"
    instruction: str  # what the LLM is asked to do; the answer format matches the training target
    assistant_instruction: str  # what the assistant reads (SoftCoT) or answers (Assist-CoT hints)


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("numeric", "number",
           "Solve the problem step by step. End with: The answer is \\boxed{number}.",
           "Write a short hint for solving this problem."),
    Family("choice", "letter",
           "Solve the problem step by step, then pick one option. End with: The answer is \\boxed{letter}.",
           "Write a short hint for choosing the right option."),
    Family("yesno", "yesno",
           "Think step by step, then answer yes or no. End with: The answer is \\boxed{yes or no}.",
           "Write a short hint for answering this yes/no question."),
)}


@dataclass(frozen=True)
class Task:
    """One benchmark: its name, answer family, native-file parser and default scoring mode."""

    name: str
    family: str  # a key of FAMILIES
    parser: str  # a record parser of softcot.data ("gsm8k", "asdiv", "aqua", "strategyqa", "date")
    description: str
    scoring: str = "default"  # default extraction mode (softcot.scoring.MODES)
    own_splits: bool = False  # True: a bare split="train"/"test" cuts the file (StrategyQA, 80/20)
    # what the task needs from the assistant: a regex matching the questions whose answer needs a
    # fact only the assistant knows ("" = unknown); diagnostics split the dev loss by it
    assistant_fact: str = ""

    @property
    def instruction(self) -> str:
        return FAMILIES[self.family].instruction

    @property
    def assistant_instruction(self) -> str:
        return FAMILIES[self.family].assistant_instruction


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("gsm8k", "numeric", "gsm8k", "GSM8K grade-school math (jsonl, answer after '####')"),
    Task("asdiv-aug", "numeric", "asdiv", "ASDiv-Aug math word problems (jsonl, GSM8K form; or ASDiv.xml)"),
    Task("asdiv", "numeric", "asdiv", "ASDiv math word problems (ASDiv.xml or GSM8K-form jsonl)"),
    Task("aqua", "choice", "aqua", "AQuA-RAT algebra, five options A-E (jsonl)"),
    Task("strategyqa", "yesno", "strategyqa", "StrategyQA yes/no questions (json; paper split 80/20)",
         own_splits=True),
    Task("date", "choice", "date", "Date Understanding, BBH or BIG-bench task.json (options A-F)"),
    Task("miniworld", "numeric", "gsm8k", "the embedded mini world's arithmetic problems (GSM8K form)",
         assistant_fact=r"\b\d+ (crates|packs|trays|jars) of\b"),  # a pack's size: softcot.miniworld.generator
)}


def get_task(name: str) -> Task:
    """The registered task, or a ValueError naming the known ones."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    return TASKS[name]


def needs_assistant_fact(task: str, question: str) -> bool | None:
    """Whether a question of `task` needs the fact only the assistant knows (None: the task does not say)."""
    pattern = get_task(task).assistant_fact if task in TASKS else ""
    return bool(re.search(pattern, question)) if pattern else None


def family_of(task: str) -> Family:
    """The answer family of a task name (a family name is accepted too)."""
    if task in FAMILIES:
        return FAMILIES[task]
    return FAMILIES[get_task(task).family]
