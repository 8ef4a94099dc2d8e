"""Answer extraction and scoring for the three task families (numeric, choice, yes/no).

    from softcot.scoring import extract_answer, is_correct, majority_vote
    pred = extract_answer(completion, "gsm8k")          # "18", or None on failure
    ok = is_correct(pred, example.answer, "gsm8k")       # None always counts as wrong

Extracted answers are normalised like the gold answers of `softcot.data`: numbers as plain
decimal strings ("1234.5", "-3", "0.75"), option letters upper case ("B"), "yes"/"no".
`None` means extraction failed; it is never correct and never wins a vote, so callers can
count failures separately from wrong answers.

Three extraction modes:

``default``
    0. a completion that runs on into a question of its own is cut first (`cut_run_on`): at the
       first new question turn after some text ("\\nQuestion:", "\\nQ:", "\\nProblem:", "\\nUser:",
       "\\nHuman:", a chat template's user turn such as "<|im_start|>user" or "[INST]"), so the
       answer to the model's own next question is never read. A turn at the very start is kept.
    1. the last ``\\boxed{...}`` (or ``\\fbox{...}``; nested braces handled), then
    2. the last ``#### X`` line (GSM8K style), then
    3. the last "answer is / answer: ..." phrase ("option is", "choice is" too for choice tasks),
       taking the first answer right after it (numbers: first number, as zero-shot-CoT does), then
    4. a fallback over the whole text: the last number / option letter / yes-no word.
    A step whose marker holds no answer of the right kind falls through to the next step.
    An answer stated as a calculation gives its result: when a calculation starts at the first
    number of a phrase's answer or of a marker ("The answer is 7 - 2 = 5", "\\boxed{3 \\times 4 =
    12}", "#### 7 - 2 = 5"), the number after its last "=" (or "≈") is read; a bare expression
    ("The answer is 12 + 6.") is worked out exactly (+ - * / and parentheses, no eval), except
    when it could be a range, a score or a size ("5-7", "4 x 3"): then its first number is read.
    A calculation ends at the end of its line and at the first word or punctuation mark, so
    "The answer is 12, since 3*4=12" and "The answer is 5. 3 + 2 = 5" keep 12 and 5.
    Option letters: upper case A-F as a standalone token, or any case when written "(b)" or "b)".
    A lone lower-case letter counts only right after the answer phrase and at the end of the
    sentence ("the answer is c."), so the article "a" ("a train travels ...") is never read as A,
    and neither is a capital "A" followed by a lower-case word ("A train ...") in the fallback.
    Yes/no: "yes"/"no" in any case with any punctuation; "true"/"false" are accepted inside
    ``\\boxed{}`` and right after the answer phrase (true -> yes), but not in the fallback, where
    they are too often part of the reasoning. With ``options=`` (the example's option strings),
    an option's text in ``\\boxed{}`` or after the answer phrase also maps to its letter when
    exactly one option matches; without options, letters A-F are accepted.

``reference``
    The SoftCoT reference code's loose rules, for comparison with published numbers: the last
    unsigned number anywhere (a minus sign is dropped), the last lone letter a-f in any case
    (including the article "a"), the last yes/no. The whole completion is read (no run-on cut).

``strict``
    Only an explicit answer marker counts: the last ``#### X`` (lm-evaluation-harness GSM8K
    "strict-match", except that the last marker is taken, not the first) or ``\\boxed{X}``,
    whichever comes last, and X must be a bare answer: a number (sign, ``$``, thousands commas,
    decimals, ``%``, ``a/b``, ``\\frac{a}{b}`` allowed, no words, no calculation), a letter with
    optional parentheses, or yes/no. Nothing else is read. A run-on question is cut as in default.

Numbers compare as exact rationals, equal when they differ by at most 1e-6 (so 1/3 matches
0.333333 but not 0.333). Fractions become decimals: terminating ones exactly (3/4 -> "0.75"),
others rounded to 10 decimal places. Number words ("five") are not read.
"""
from __future__ import annotations

import ast
import math
import operator
import re
from collections import Counter
from collections.abc import Iterable
from fractions import Fraction

from softcot.tasks import family_of as _family_of


def family_of(task: str) -> str:
    """The family name ("numeric", "choice", "yesno") of a task, from the task registry."""
    return _family_of(task).name

MODES = ("default", "reference", "strict")
CHOICE_LETTERS = "ABCDEF"  # accepted when the options are not given (AQuA A-E, Date A-F)
OPTION_LETTERS = "ABCDEFGHIJ"
NUMERIC_TOLERANCE = 1e-6

# --------------------------------------------------------------------------- numbers

# One number token in free text. A minus sign counts only when glued to the digits and not
# preceded by a word character or a closing bracket ("5-3" is 5 and 3, "x = -3" is -3).
# "3/4" (no spaces) is a fraction; a date-like "12/25/1937" gives nothing.
_NUM_CORE = r"(?:\d{1,3}(?:,\d{3})+(?![\d,])|\d+)(?:\.\d+)?|\.\d+"
_NUM_RE = re.compile(
    rf"(?P<neg>(?<![\w)\]}}./])[-\u2212])?\$?(?<![\w./])(?P<num>{_NUM_CORE})"
    rf"(?:/(?P<den>\d+)(?![\d.]))?(?![/\d])"
)
_BARE_NUM_RE = re.compile(
    rf"[+\-\u2212]?\s*\$?\s*(?:{_NUM_CORE})(?:\s*/\s*\d+)?\s*%?\.?"
)


def _fraction_str(value: Fraction) -> str:
    """Plain decimal text of a rational, with no exponent: exact when the decimal terminates
    (the denominator has no prime factors but 2 and 5), else rounded to 10 decimal places."""
    den, twos, fives = value.denominator, 0, 0
    while den % 2 == 0:
        den, twos = den // 2, twos + 1
    while den % 5 == 0:
        den, fives = den // 5, fives + 1
    places = max(twos, fives) if den == 1 else 10
    scaled = round(abs(value) * 10**places)  # exact when the decimal terminates
    digits = str(scaled).rjust(places + 1, "0")
    whole, frac = (digits[:-places], digits[-places:].rstrip("0")) if places else (digits, "")
    text = f"{whole}.{frac}" if frac else whole
    return f"-{text}" if value < 0 and text != "0" else text


# A thousands separator between digit groups: LaTeX's {,} \, \! \; \: "\ ", or a thin / narrow
# no-break / no-break space ("1{,}234", "1\,234", "1 234" with U+2009). Only before exactly three
# digits, so a decimal comma ("3{,}5") is left alone.
_GROUP_SEP = re.compile(r"(?<=\d)(?:\{,\}|\\[,!;: ]|[\u2009\u202f\u00a0])(?=\d{3}(?!\d))")


def _latex_to_plain(text: str) -> str:
    """Undo the LaTeX a model may wrap around an answer: \\frac{a}{b} -> a/b, \\text{x} -> x,
    escaped $ and %, thin spaces, thousands separators (1{,}234 -> 1,234), \\left( ... \\right)."""
    text = _GROUP_SEP.sub(",", text)
    text = re.sub(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"\1/\2", text)
    text = re.sub(r"\\(?:text|textbf|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\\(?:left|right)\b", "", text)
    text = text.replace("\\$", "$").replace("\\%", "%").replace("\\!", "").replace("\\,", "")
    text = text.replace("\\ ", " ").replace("~", " ").replace("\\cdot", "*").replace("\\times", "*")
    return text


def _token_value(m: re.Match) -> Fraction:
    value = Fraction(m.group("num").replace(",", ""))
    if m.group("den") is not None:
        den = int(m.group("den"))
        value = value / den if den else value
    return -value if m.group("neg") else value


def normalize_number(s: str | int | float | None) -> str | None:
    """Canonical text of one number, or None if `s` does not start with one.

    Handles a sign (also "+" and the Unicode minus), ``$``, thousands commas, ``%``, trailing
    ``.0``/``.00``, a fraction ``3/4`` or ``\\frac{3}{4}`` (-> "0.75"), and words after the
    number ("5 apples" -> "5"). Text with a second number after the first ("12 + 6") is
    rejected rather than guessed.

    >>> normalize_number("$1,234.50"), normalize_number("-7.0"), normalize_number("3/4")
    ('1234.5', '-7', '0.75')
    """
    if s is None or isinstance(s, bool):
        return None
    if isinstance(s, (int, float)):
        return _fraction_str(Fraction(str(s))) if math.isfinite(s) else None
    text = _latex_to_plain(str(s)).strip().strip("*").strip()
    m = re.match(
        rf"(?P<neg>[-\u2212])?\+?\s*\$?\s*(?P<num>{_NUM_CORE})(?:\s*/\s*(?P<den>\d+))?", text
    )
    if not m or re.search(r"\d", text[m.end():]):
        return None
    if m.group("den") is not None and int(m.group("den")) == 0:
        return None
    return _fraction_str(_token_value(m))


def numbers_equal(a: str, b: str, tol: float = NUMERIC_TOLERANCE) -> bool:
    """Whether two number strings are equal up to `tol` (absolute), after normalisation."""
    na, nb = normalize_number(a), normalize_number(b)
    if na is None or nb is None:
        return False
    return abs(Fraction(na) - Fraction(nb)) <= Fraction(tol)


def _numbers_in(text: str) -> list[str]:
    return [_fraction_str(_token_value(m)) for m in _NUM_RE.finditer(text)]


# --------------------------------------------------------------------------- calculations

# An answer stated as a calculation ("7 - 2 = 5", "$3 * 4 = $12", "12 + 6"): number tokens joined
# by + - * / x = on one line. A tight "a/b" is one fraction operand and a date ("12/25/1937") never
# matches, as in _NUM_RE; "/" as division needs spaces ("12 / 4").
_OPERAND = rf"\(*[-\u2212]?\$?(?:{_NUM_CORE})(?:/\d+(?![\d.]))?(?![/\d])\)*"
_OPERATOR = r"[ \t]*(?:[-+*/=\u2212\u00d7\u00f7\u2248]|(?<=[ \t])x(?=[ \t]))[ \t]*"
_CALC_RE = re.compile(rf"{_OPERAND}(?:{_OPERATOR}{_OPERAND})+")
# Without "=", "5-7" is more likely a range or a score and "4 x 3" a size than a sum to work out.
_AMBIGUOUS_BARE = re.compile(r"[\d)][-\u2212][\d($]|\sx\s")
_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _arith(expr: str) -> Fraction | None:
    """The exact value of + - * / arithmetic on plain numbers, or None. The numbers become names
    (exact Fractions, no float rounding) and the tree is walked by hand: nothing is eval()ed."""
    values: list[Fraction] = []

    def name(m: re.Match) -> str:
        values.append(Fraction(m.group()))
        return f" n{len(values) - 1} "

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Name):
            return values[int(node.id[1:])]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -walk(node.operand) if isinstance(node.op, ast.USub) else walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
            return _ARITH[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError(f"not arithmetic: {ast.dump(node)}")

    expr = expr.translate({0x2212: "-", 0xD7: "*", 0xF7: "/", ord("$"): None, ord(","): None})
    try:
        expr = re.sub(r"\d+(?:\.\d+)?|\.\d+", name, expr.replace(" x ", " * "))
        value = walk(ast.parse(expr.strip(), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, IndexError, RecursionError):
        return None
    # a pathological product could outgrow what str() prints (4300 digits): no answer, not a crash
    return value if max(abs(value.numerator), value.denominator).bit_length() < 10_000 else None


def _stated_number(text: str) -> str | None:
    """The first number in `text` or, when a calculation starts there, its result: what follows
    the last "=" ("7 - 2 = 5" -> 5; "3 * 4 = 10 + 2" -> 12), or an unambiguous bare expression
    ("12 + 6" -> 18, but "5-7" -> 5). The calculation stops at the end of its line and at the
    first word or punctuation, so "12, since 3*4=12" is 12 and "5. 3 + 2 = 5" is 5."""
    text = re.sub(r"\\div(?![a-zA-Z])", " / ", text).replace("\\approx", "\u2248")
    m = _NUM_RE.search(text)
    if m is None:
        return None
    calc = _CALC_RE.match(text, len(text[: m.start()].rstrip("(")))  # "(3 + 4) * 2" from its "("
    if calc:
        *steps, result = re.split(r"[=\u2248]", calc.group())
        value = None if not steps and _AMBIGUOUS_BARE.search(result) else _arith(result)
        if value is not None:
            return _fraction_str(value)
        if steps:  # a result that does not parse alone ("14)"): its first number
            nums = _numbers_in(result)
            return nums[0] if nums else None
    return _fraction_str(_token_value(m))


# --------------------------------------------------------------------------- run-on questions

# A new question turn: a "Question:", "Q:", "Problem:", "User:" or "Human:" line (markdown "**" or
# "#" allowed), or a chat template's user turn (ChatML, Llama 3, Gemma, Phi-3, DeepSeek, [INST]).
_RUN_ON = re.compile(
    r"\n[ \t#*]*(?:Question|Q|Problem|User|USER|Human|HUMAN)[ \t*]*:"
    r"|<\|im_start\|>[ \t]*user|<\|start_header_id\|>[ \t]*user|<start_of_turn>[ \t]*user"
    r"|<\|user\|>|<\uff5cUser\uff5c>|\[INST\]"
)


def cut_run_on(text: str, extra_markers: Iterable[str] = ()) -> str:
    """`text` cut before the first new question turn that follows some text of the model's own, so
    an answer the model gives to a question it asked itself is never read ("... no.\\nQuestion:
    Is ...?\\nAnswer: yes" -> "... no."). A turn at the very start (a model that restates the
    question first) is kept: the answer comes after it. `extra_markers` are literal strings that
    also start a new turn (e.g. lm-eval's stop strings)."""
    pattern = _RUN_ON
    if extra_markers:
        pattern = re.compile("|".join([_RUN_ON.pattern, *map(re.escape, extra_markers)]))
    cut = next((m.start() for m in pattern.finditer(text) if text[: m.start()].strip()), len(text))
    return text[:cut]


# --------------------------------------------------------------------------- markers

def _boxed_spans(text: str) -> list[tuple[int, str]]:
    """(position, content) of every closed ``\\boxed{...}`` / ``\\fbox{...}``, braces balanced."""
    out = []
    for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:  # an unclosed box (a truncated completion) is ignored
            out.append((m.start(), text[m.end(): i - 1]))
    return out


def find_boxed(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}`` / ``\\fbox{...}`` in order, nested braces balanced:
    ``find_boxed(r"\\boxed{\\frac{1}{2}}") == [r"\\frac{1}{2}"]``."""
    return [c for _, c in _boxed_spans(text)]


def _hash_spans(text: str) -> list[tuple[int, str]]:
    """(position, rest of line) of every ``#### X`` marker."""
    return [(m.start(), m.group(1)) for m in re.finditer(r"####[ \t]*([^\n]*)", text)]


_CONNECTOR = r"\s*(?:is|:|=|would be|should be|will be|must be)\s*:?"
_ANSWER_PHRASE = {
    "numeric": re.compile(rf"\banswer{_CONNECTOR}", re.I),
    "yesno": re.compile(rf"\banswer{_CONNECTOR}", re.I),
    "choice": re.compile(rf"\b(?:answer|option|choice){_CONNECTOR}", re.I),
}

# --------------------------------------------------------------------------- per family


def _letters(options: list[str] | None) -> str:
    """Accepted option letters: one per option, or A-F when the options are not given."""
    return OPTION_LETTERS[: len(options)] if options else CHOICE_LETTERS


def _option_text(option: str) -> str:
    return re.sub(r"^\s*\(?[A-Za-z]\s*\)\s*", "", option).strip()


def _match_option_text(content: str, options: list[str] | None) -> str | None:
    """The letter of the one option whose text equals `content` (case, spaces, $ ignored)."""
    if not options:
        return None

    def norm(x: str) -> str:
        return re.sub(r"[\s$]+", "", x).strip(".").lower()

    target = norm(_latex_to_plain(content))
    if not target:
        return None
    hits = [i for i, o in enumerate(options) if norm(_option_text(o)) == target]
    return OPTION_LETTERS[hits[0]] if len(hits) == 1 else None


def _letter_in_marker(content: str, letters: str) -> str | None:
    """A letter that makes up a marker's content: "B", "(b)", "B)", "\\text{B}", "B. 12", "Option B"."""
    c = _latex_to_plain(content).strip().strip("*$ ").strip()
    m = re.match(r"(?:option|choice)?\s*\(?([A-Za-z])(?:\)|(?=[.:]\s)|(?=[.:]?$))", c, re.I)
    if m and m.group(1).upper() in letters:
        return m.group(1).upper()
    return None


def _letter_after_phrase(tail: str, letters: str) -> str | None:
    """The letter right after an answer phrase; lower case only as "(b)", "b)" or "b." at the end."""
    tail = re.sub(r"^[\s*:$\\]*(?:option|choice)?\s*", "", tail, flags=re.I)
    m = re.match(r"\(([A-Za-z])\)|([A-Za-z])\)|([A-Z])(?![\w'\u2019-])|([a-z])[.!]?\s*(?:$|\n)", tail)
    if not m:
        return None
    letter = next(g for g in m.groups() if g).upper()
    return letter if letter in letters else None


def _last_letter(text: str, letters: str) -> str | None:
    """Fallback: the last "(X)", "X)", or standalone capital X (not "A" before a lower-case word)."""
    pattern = re.compile(
        r"\(([A-Za-z])\)|(?<![\w(])([A-Za-z])\)"
        r"|(?<![\w'\u2019-])(A(?![\w'\u2019-])(?!\s+[a-z])|[B-Z](?![\w'\u2019-]))"
    )
    found = None
    for m in pattern.finditer(text):
        letter = next(g for g in m.groups() if g).upper()
        if letter in letters:
            found = letter
    return found


def _yesno_word(text: str) -> str | None:
    """yes/no as the first word of `text` (true -> yes, false -> no), else None."""
    m = re.match(r"[\s*:\"'`(\[]*(yes|no|true|false)\b", _latex_to_plain(text), re.I)
    if not m:
        return None
    word = m.group(1).lower()
    return {"true": "yes", "false": "no"}.get(word, word)


def _from_marker(
    content: str, family: str, letters: str, options: list[str] | None, strict: bool
) -> str | None:
    """The answer a marker's content holds, or None."""
    if family == "numeric":
        plain = _latex_to_plain(content).strip()
        if strict:
            return normalize_number(plain) if _BARE_NUM_RE.fullmatch(plain) else None
        return _stated_number(plain.rsplit("=", 1)[-1])  # "x = 3 * 4 = 12" -> "12"
    if family == "choice":
        if strict:
            c = _latex_to_plain(content).strip()
            m = re.fullmatch(r"\(?([A-Za-z])\)?\.?", c)
            return m.group(1).upper() if m and m.group(1).upper() in letters else None
        return _letter_in_marker(content, letters) or _match_option_text(content, options)
    plain = _latex_to_plain(content).strip()
    if strict:
        m = re.fullmatch(r"(yes|no)\.?", plain, re.I)
        return m.group(1).lower() if m else None
    return _yesno_word(plain)


def _from_phrase(tail: str, family: str, letters: str, options: list[str] | None) -> str | None:
    """The answer right after an answer phrase, or None."""
    if family == "numeric":
        return _stated_number(_latex_to_plain(tail))
    if family == "choice":
        letter = _letter_after_phrase(tail, letters)
        if letter is None and options:
            first = re.split(r"(?<!\d)\.(?!\d)|\n", tail.strip(), maxsplit=1)[0]
            letter = _match_option_text(first, options)
        return letter
    return _yesno_word(tail)


def _fallback(text: str, family: str, letters: str) -> str | None:
    """The last number / option letter / yes-no word anywhere in the text."""
    if family == "numeric":
        nums = _numbers_in(_latex_to_plain(text))
        return nums[-1] if nums else None
    if family == "choice":
        return _last_letter(text, letters)
    hits = re.findall(r"\b(yes|no)\b", text, re.I)
    return hits[-1].lower() if hits else None


def _reference(text: str, family: str) -> str | None:
    """The SoftCoT reference code's loose rules (see the module docstring)."""
    if family == "numeric":
        nums = re.findall(r"\d+(?:\.\d+)?", text.replace(",", ""))
        return normalize_number(nums[-1]) if nums else None
    if family == "choice":
        hits = re.findall(r"\b([A-Fa-f])\b", text)
        return hits[-1].upper() if hits else None
    hits = re.findall(r"\b(yes|no)\b", text, re.I)
    return hits[-1].lower() if hits else None


# --------------------------------------------------------------------------- public API


def extract_answer(
    completion: str | None, task: str, mode: str = "default", *, options: list[str] | None = None
) -> str | None:
    """The normalised answer in a model completion, or None when none can be found.

    task:    a task name or family ("gsm8k", "aqua", "strategyqa", "numeric", ...)
    mode:    "default", "reference" or "strict" (see the module docstring)
    options: the example's options ("A) 12", ...); restricts the accepted letters and lets an
             option's text stand for its letter (default mode only)
    """
    if mode not in MODES:
        raise ValueError(f"unknown scoring mode {mode!r}; expected one of {MODES}")
    family = family_of(task)
    if not completion:
        return None
    text = str(completion)
    if mode == "reference":
        return _reference(text, family)
    text = cut_run_on(text)
    letters = _letters(options)
    strict = mode == "strict"
    boxes, hashes = _boxed_spans(text), _hash_spans(text)
    if strict:
        markers = sorted(boxes + hashes)
        return _from_marker(markers[-1][1], family, letters, options, True) if markers else None
    for spans in (boxes, hashes):
        if spans:
            ans = _from_marker(spans[-1][1], family, letters, options, False)
            if ans is not None:
                return ans
    phrases = list(_ANSWER_PHRASE[family].finditer(text))
    if phrases:
        ans = _from_phrase(text[phrases[-1].end():], family, letters, options)
        if ans is not None:
            return ans
    return _fallback(text, family, letters)


def normalize_answer(answer: str | None, task: str) -> str | None:
    """A gold or predicted answer in canonical form for its task family (None if unreadable)."""
    if answer is None:
        return None
    family = family_of(task)
    if family == "numeric":
        return normalize_number(answer)
    if family == "choice":
        m = re.fullmatch(r"\s*\(?([A-Za-z])\)?\.?\s*", str(answer))
        return m.group(1).upper() if m else None
    m = re.fullmatch(r"\s*(yes|no|true|false)\.?\s*", str(answer), re.I)
    return {"true": "yes", "false": "no"}.get(m.group(1).lower(), m.group(1).lower()) if m else None


def is_correct(pred: str | None, gold: str, task: str) -> bool:
    """Whether a prediction matches the gold answer. None (extraction failure) is never correct.
    Numbers compare numerically (tolerance 1e-6); letters and yes/no case-insensitively."""
    if pred is None:
        return False
    if family_of(task) == "numeric":
        return numbers_equal(pred, gold)
    p, g = normalize_answer(pred, task), normalize_answer(gold, task)
    return p is not None and p == g


def majority_vote(preds: list[str | None], task: str | None = None) -> str | None:
    """The most frequent answer; None entries are ignored (all None -> None).

    With `task`, answers are compared in canonical form ("1,000" and "1000.0" are one vote
    group) and the canonical form is returned; without it, as exact strings. Ties go to the
    answer whose first occurrence comes earliest in `preds` (deterministic, order-dependent).
    """
    keys: list[str] = []
    for p in preds:
        if p is None:
            continue
        k = normalize_answer(p, task) if task is not None else p
        keys.append(k if k is not None else p)
    if not keys:
        return None
    counts = Counter(keys)
    best = max(counts.values())
    return next(k for k in keys if counts[k] == best)


def score(preds: list[str | None], golds: list[str], task: str) -> dict[str, float | int]:
    """Accuracy over a list: {"n", "correct", "failed" (None predictions), "accuracy"}."""
    if len(preds) != len(golds):
        raise ValueError(f"{len(preds)} predictions but {len(golds)} gold answers")
    correct = sum(is_correct(p, g, task) for p, g in zip(preds, golds))
    n = len(golds)
    return {
        "n": n,
        "correct": correct,
        "failed": sum(p is None for p in preds),
        "accuracy": correct / n if n else 0.0,
    }
