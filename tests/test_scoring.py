"""Answer extraction, normalisation, correctness and voting on tricky completions."""
from __future__ import annotations

import pytest

from softcot.scoring import (
    cut_run_on,
    extract_answer,
    find_boxed,
    is_correct,
    majority_vote,
    normalize_answer,
    normalize_number,
    numbers_equal,
    score,
)

# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "text, value",
    [
        ("18", "18"),
        ("-3", "-3"),
        ("\u22123", "-3"),
        ("+4", "4"),
        ("1,234", "1234"),
        ("$1,234.50", "1234.5"),
        ("$ 7", "7"),
        ("7.0", "7"),
        ("7.00", "7"),
        ("0.50", "0.5"),
        (".5", "0.5"),
        ("50%", "50"),
        ("5 apples", "5"),
        ("5.", "5"),
        ("3/4", "0.75"),
        ("-3/4", "-0.75"),
        ("1/3", "0.3333333333"),
        ("\\frac{1}{2}", "0.5"),
        ("\\$12", "12"),
        ("-0", "0"),
        ("12 + 6", None),
        ("five", None),
        ("", None),
        ("1/0", None),
        (None, None),
        (12, "12"),
        (2.50, "2.5"),
    ],
)
def test_normalize_number(text, value):
    assert normalize_number(text) == value


def test_numbers_equal():
    assert numbers_equal("1,000", "1000.00")
    assert numbers_equal("0.3333333", "1/3")
    assert not numbers_equal("0.333", "1/3")
    assert not numbers_equal("1000001", "1000000")  # no relative tolerance on big integers
    assert not numbers_equal("x", "1")


# --------------------------------------------------------------------------- numeric extraction

NUMERIC = [
    # completion, default, reference, strict
    ("The answer is \\boxed{18}.", "18", "18", "18"),
    ("So \\boxed{\\frac{1}{2}} of the cake.", "0.5", "2", "0.5"),
    ("First \\boxed{5}, then corrected: \\boxed{-7}.", "-7", "7", "-7"),
    ("The answer is \\boxed{-\\frac{3}{4}}.", "-0.75", "4", "-0.75"),
    ("Total: \\boxed{\\$1,234.50}", "1234.5", "1234.5", "1234.5"),
    ("\\boxed{5 \\text{ apples}}", "5", "5", None),  # strict: words in the box
    ("\\boxed{3 \\times 4 = 12}", "12", "12", None),
    ("\\boxed{50\\%}", "50", "50", "50"),
    ("The answer is 5 apples.", "5", "5", None),
    ("It costs $1,234.50 in total.", "1234.5", "1234.5", None),
    ("The final answer is: $1,234.50. We spent 3 hours.", "1234.5", "3", None),
    ("The temperature is -5 degrees.", "-5", "5", None),
    ("x = -3", "-3", "3", None),
    ("16 - 3 - 4 = 9 eggs", "9", "9", None),
    ("She pays 5-3 dollars", "3", "3", None),
    ("Janet sells 16 - 3 - 4 = 9 eggs.\n#### 9", "9", "9", "9"),
    ("#### 1,234", "1234", "1234", "1234"),
    ("#### -12", "-12", "12", "-12"),
    ("#### 7 apples", "7", "7", None),
    ("Answer: 42", "42", "42", None),
    ("The answer is 12 + 6 = 18.", "18", "18", None),  # a stated calculation gives its result
    ("I ate 3/4 of the pie.", "0.75", "4", None),
    ("On 12/25/1937 it snowed.", None, "1937", None),  # dates are not numbers
    ("The answer is \\boxed{}. Then 7.", "7", "7", None),  # empty box falls through
    ("I am not sure.", None, None, None),
    ("", None, None, None),
    ("The answer is **18**.", "18", "18", None),
    ("Result \\boxed{18", "18", "18", None),  # unclosed box (truncated) is ignored
    ("The answer is 0.50", "0.5", "0.5", None),
    ("The answer is 3.0.", "3", "3", None),
]


@pytest.mark.parametrize("completion, default, reference, strict", NUMERIC)
def test_numeric_extraction(completion, default, reference, strict):
    assert extract_answer(completion, "gsm8k") == default
    assert extract_answer(completion, "gsm8k", "reference") == reference
    assert extract_answer(completion, "gsm8k", "strict") == strict


def test_nested_and_multiple_boxes():
    text = "\\boxed{\\frac{1}{2}} and \\fbox{x} and \\boxed{\\text{B}}"
    assert find_boxed(text) == ["\\frac{1}{2}", "x", "\\text{B}"]
    assert extract_answer("\\boxed{1} \\boxed{2} \\boxed{3}", "asdiv") == "3"
    # the last box wins over a later "answer is" phrase and over #### (box first, then ####)
    assert extract_answer("\\boxed{4}. The answer is 5.", "gsm8k") == "4"
    assert extract_answer("#### 6\n\\boxed{4}", "gsm8k") == "4"
    # strict takes whichever marker comes last
    assert extract_answer("\\boxed{4}\n#### 6", "gsm8k", "strict") == "6"


def test_numeric_tasks_share_rules():
    for task in ("gsm8k", "asdiv", "asdiv-aug", "miniworld", "numeric"):
        assert extract_answer("The answer is \\boxed{-2.5}.", task) == "-2.5"


# --------------------------------------------------------------------------- choice extraction

CHOICE = [
    # completion, default, reference, strict
    ("The answer is \\boxed{B}.", "B", "B", "B"),
    ("The answer is \\boxed{\\text{B}}.", "B", "B", "B"),
    ("The answer is \\boxed{(B)}.", "B", "B", "B"),
    ("\\boxed{b}", "B", "B", "B"),
    ("\\boxed{C) 18 km/h}", "C", "C", None),
    ("\\boxed{A} then \\boxed{D}", "D", "D", "D"),
    ("A train travels 60 km in 1 hour, so a car is slower.", None, "A", None),
    ("a train travels at 50 km/h", None, "A", None),
    ("The answer is a train.", None, "A", None),
    ("The answer is c.", "C", "C", None),
    ("The answer is (D) 20 km/h.", "D", "D", None),
    ("The answer is D because the speed is 20.", "D", "D", None),
    ("So the correct option is E.", "E", "E", None),
    ("Answer: (a)", "A", "A", None),
    ("I compared (A) and (C); (C) is right.", "C", "C", None),
    ("Option B is the only one that works.", "B", "B", None),
    ("It must be A.", "A", "A", None),
    ("I'm not sure.", None, None, None),
    ("There are 12 apples.", None, None, None),
    ("The answer is \\boxed{G}.", None, None, None),  # not an option letter
]


@pytest.mark.parametrize("completion, default, reference, strict", CHOICE)
def test_choice_extraction(completion, default, reference, strict):
    assert extract_answer(completion, "aqua") == default
    assert extract_answer(completion, "aqua", "reference") == reference
    assert extract_answer(completion, "aqua", "strict") == strict


def test_choice_with_options():
    options = ["A) 12/11/1937", "B) 12/25/1937", "C) 01/04/1938"]
    assert extract_answer("\\boxed{12/25/1937}", "date", options=options) == "B"
    assert extract_answer("The answer is 01/04/1938.", "date", options=options) == "C"
    assert extract_answer("The answer is \\boxed{D}.", "date", options=options) is None  # only A-C
    assert extract_answer("The answer is \\boxed{F}.", "date") == "F"  # A-F without options
    assert extract_answer("\\boxed{12/25/1937}", "date") is None  # text needs options
    # ambiguous option text does not map
    assert extract_answer("\\boxed{5}", "aqua", options=["A) 5", "B) 5"]) is None


# --------------------------------------------------------------------------- yes/no extraction

YESNO = [
    ("The answer is \\boxed{yes}.", "yes", "yes", "yes"),
    ("The answer is \\boxed{\\text{No}}.", "no", "no", "no"),
    ("\\boxed{Yes, it can}", "yes", "yes", None),
    ("\\boxed{True}", "yes", None, None),
    ("The answer is False.", "no", None, None),
    ("Yes.", "yes", "yes", None),
    ("no, it cannot.", "no", "no", None),
    ("NO", "no", "no", None),
    ("The answer is: **Yes**", "yes", "yes", None),
    ("Penguins cannot fly, so no. Some say yes, but no.", "no", "no", None),
    ("The statement is true.", None, None, None),  # true/false only in box or after the phrase
    ("Nobody knows; it is not known.", None, None, None),  # "no" inside words does not count
    ("", None, None, None),
]


@pytest.mark.parametrize("completion, default, reference, strict", YESNO)
def test_yesno_extraction(completion, default, reference, strict):
    assert extract_answer(completion, "strategyqa") == default
    assert extract_answer(completion, "strategyqa", "reference") == reference
    assert extract_answer(completion, "strategyqa", "strict") == strict


def test_unknown_mode_and_task():
    with pytest.raises(ValueError, match="mode"):
        extract_answer("5", "gsm8k", "loose")
    with pytest.raises(ValueError, match="unknown task"):
        extract_answer("5", "mmlu")


# --------------------------------------------------------------------------- correctness


@pytest.mark.parametrize(
    "pred, gold, task, ok",
    [
        ("18", "18", "gsm8k", True),
        ("18.0", "18", "gsm8k", True),
        ("1,234", "1234", "gsm8k", True),
        ("-5", "5", "gsm8k", False),  # the sign matters
        ("2.5", "2.50", "asdiv", True),
        ("0.75", "3/4", "asdiv", True),
        (None, "18", "gsm8k", False),  # extraction failure is never correct
        ("b", "B", "aqua", True),
        ("(B)", "B", "date", True),
        ("C", "B", "aqua", False),
        (None, "B", "aqua", False),
        ("Yes", "yes", "strategyqa", True),
        ("true", "yes", "strategyqa", True),
        ("no", "yes", "strategyqa", False),
        ("maybe", "yes", "strategyqa", False),
    ],
)
def test_is_correct(pred, gold, task, ok):
    assert is_correct(pred, gold, task) is ok


def test_normalize_answer():
    assert normalize_answer("$1,000", "gsm8k") == "1000"
    assert normalize_answer("(c)", "aqua") == "C"
    assert normalize_answer("False", "strategyqa") == "no"
    assert normalize_answer("maybe", "strategyqa") is None
    assert normalize_answer(None, "aqua") is None


# --------------------------------------------------------------------------- voting and scoring


def test_majority_vote():
    assert majority_vote(["5", "6", "6", None]) == "6"
    assert majority_vote([None, None, None, "5"]) == "5"  # None never wins
    assert majority_vote([None, None]) is None
    assert majority_vote([]) is None
    assert majority_vote(["5", "6", "6", "5"]) == "5"  # tie: earliest first occurrence
    assert majority_vote(["6", "5", "5", "6"]) == "6"
    assert majority_vote([None, "7", None, "8"]) == "7"
    # with a task, equal answers in different forms form one group
    assert majority_vote(["1,000", "7", "1000.0"], "gsm8k") == "1000"
    assert majority_vote(["1,000", "7", "1000.0"]) == "1,000"  # exact strings without a task
    assert majority_vote(["b", "B", "C"], "aqua") == "B"
    assert majority_vote(["Yes", "no", "yes"], "strategyqa") == "yes"


def test_score():
    result = score(["18", None, "5"], ["18", "3", "4"], "gsm8k")
    assert result == {"n": 3, "correct": 1, "failed": 1, "accuracy": pytest.approx(1 / 3)}
    with pytest.raises(ValueError):
        score(["1"], ["1", "2"], "gsm8k")


# --------------------------------------------------------------------------- LaTeX thousands separators
# Found by the lm-eval parity check (README, "softcot inside lm-evaluation-harness"): models write
# large numbers in LaTeX with {,} \, \! or a thin space between digit groups.


THOUSANDS = [
        (r"The answer is \boxed{1{,}234}.", "1234", "1234"),
        (r"\boxed{12{,}345{,}678}", "12345678", "12345678"),
        (r"\boxed{-1{,}234.5}", "-1234.5", "-1234.5"),
        (r"\boxed{\$1{,}000}", "1000", "1000"),
        (r"\boxed{1\,234}", "1234", "1234"),
        (r"\boxed{1\!234}", "1234", "1234"),
        (r"\boxed{1\ 234}", "1234", "1234"),
        ("The answer is 1\u2009234.", "1234", None),  # thin space, no marker: not strict
        ("The answer is 1\u202f234 eggs.", "1234", None),  # narrow no-break space
        ("#### 2\u2009500", "2500", "2500"),
        (r"So she makes 1{,}250 toys.", "1250", None),  # the fallback reads them too
        # today's behaviour elsewhere: a decimal comma is not a thousands separator, plain spaces split
        (r"\boxed{3{,}5}", "3", None),
        ("The answer is 1 234.", "1", None),
        (r"\boxed{1\,23}", "123", "123"),
]


@pytest.mark.parametrize("completion,default,strict", THOUSANDS)
def test_latex_thousands_separators(completion, default, strict):
    assert extract_answer(completion, "gsm8k") == default
    assert extract_answer(completion, "gsm8k", "strict") == strict


def test_latex_thousands_in_gold_and_comparison():
    assert normalize_number("1{,}234") == "1234" and normalize_number("1\u2009234") == "1234"
    assert is_correct(extract_answer(r"\boxed{5{,}000}", "gsm8k"), "5,000", "gsm8k")


# --------------------------------------------------------------------------- stated calculations
# An answer stated as a calculation takes its result: what follows the last "=", or an
# unambiguous bare expression worked out exactly. Only a calculation that starts at the answer's
# first number counts, and it ends at the end of its line, at a word or at punctuation.

CALCULATIONS = [
    # completion, default, strict
    ("The answer is 7 - 2 = 5", "5", None),
    ("The answer is 3 * 4 = 12 apples.", "12", None),
    ("answer: 12 + 6 = 18.", "18", None),
    ("The answer is 7 - 2 = 5. So she has 5 left.", "5", None),
    (r"The answer is $3 \times 4 = \$12$", "12", None),
    (r"The answer is \(3 \cdot 4 = 12\).", "12", None),
    ("The answer is 3 * 4 = 10 + 2 = 12.", "12", None),  # a chain: its last step
    ("The answer is = 10 + 2 = 12", "12", None),
    ("The answer is 1,000 + 234 = 1,234 dollars.", "1234", None),
    ("The answer is 2.5 * 4 = 10.0", "10", None),
    ("The answer is 7 \u2212 2 = 5", "5", None),  # Unicode minus
    ("The answer is 3 \u00d7 4 = 12", "12", None),
    ("The answer is 3 x 4 = 12", "12", None),
    ("The answer is 1/3 + 1/6 = 1/2", "0.5", None),
    ("The answer is (3 + 4) * 2 = 14.", "14", None),
    ("The answer is -3 - 2 = -5.", "-5", None),
    ("The answer is x = 7 - 2 = 5.", "5", None),
    ("The answer is that she has 3 * 4 = 12 apples.", "12", None),
    ("The answer is 10. Wait, 3*4 = 12, so the answer is 12.", "12", None),  # self-correction
    # a bare expression (no "=") is worked out when it cannot be a range, a score or a size
    ("The answer is 12 + 6.", "18", None),
    ("The answer is (3 + 4) * 2.", "14", None),
    (r"The answer is 12 \div 4.", "3", None),
    ("The answer is 12 / 4 = 3.", "3", None),
    ("The answer is 0.1 + 0.2", "0.3", None),  # exact: no float rounding
    ("The answer is 5-7 days.", "5", None),  # a range, not 5 - 7
    ("The answer is 4 x 3 feet.", "4", None),  # a size, not a product
    ("The answer is 10 / 0.", "10", None),  # no value: the first number, as before
    # markers: the last "=" of the content, and the same bare-expression rule
    ("#### 7 - 2 = 5", "5", None),
    (r"\boxed{7-2=5}", "5", None),
    (r"\boxed{12 + 6}", "18", None),
    (r"\boxed{5-7}", "5", None),
    (r"\boxed{12 \div 4}", "3", None),  # strict reads bare numbers only
    (r"\boxed{\pi r^2 \approx 28.27}", "28.27", None),
    # not a calculation that states the answer: unchanged
    ("the answer is -3", "-3", None),
    ("The answer is 5. 3 + 2 = 5 checks it.", "5", None),
    ("The answer is 5. 3 + 4 = 7 is wrong.", "5", None),
    ("the answer is 12, since 3*4=12", "12", None),
    ("The answer is 12, since 3*4=13", "12", None),  # the stated answer stays, even if a check disagrees
    ("The answer is 12\n+ 6 = 18 more would be wrong", "12", None),  # a calculation stays on its line
    ("The answer is 3/4 of the cake.", "0.75", None),
    ("The answer is 12/25/1937.", None, None),  # a date is not 12 / 25 / 1937
    ("The answer is 1,234.", "1234", None),
    ("The answer is 2.5 hours.", "2.5", None),
    ("The answer is 2012-2015.", "2012", None),
    ("Janet sells 16 - 3 - 4 = 9 eggs.\n#### 9", "9", "9"),
    ("#### 18", "18", "18"),
]


@pytest.mark.parametrize("completion, default, strict", CALCULATIONS)
def test_stated_calculations(completion, default, strict):
    assert extract_answer(completion, "gsm8k") == default
    assert extract_answer(completion, "gsm8k", "strict") == strict


def test_pathological_calculations_do_not_crash():
    assert extract_answer("The answer is " + "1 + " * 20000 + "1", "gsm8k") == "1"  # too deep: first number
    assert extract_answer("The answer is " + "(" * 3000 + "1", "gsm8k") == "1"
    assert extract_answer("The answer is " + " * ".join(["9" * 1000] * 6), "gsm8k") == "9" * 1000  # too big


# --------------------------------------------------------------------------- run-on questions
# A completion that runs on into a question of its own is cut before it (default and strict modes);
# the reference mode keeps the reference code's loose rules and reads the whole text.

RUN_ON = [
    # completion, task, default, strict, reference
    ("The answer is no.\nQuestion: Is the sky green?\nAnswer: yes", "strategyqa", "no", None, "yes"),
    ("So no.\n\nQ: Can fish fly?\nA: yes", "strategyqa", "no", None, "yes"),
    ("\\boxed{no}\nHuman: Is water wet?\nAssistant: \\boxed{yes}", "strategyqa", "no", "no", "yes"),
    ("\\boxed{yes}\nUSER: next one\nASSISTANT: \\boxed{no}", "strategyqa", "yes", "yes", "no"),
    ("The answer is 7.\nQuestion: Tom has 3 apples...\nAnswer: The answer is 9.", "gsm8k", "7", None, "9"),
    ("3 + 4 = 7.\n#### 7\n\nProblem: Sam has 2 pens.\n#### 2", "gsm8k", "7", "7", "2"),
    ("The answer is \\boxed{7}.<|im_end|>\n<|im_start|>user\nSolve: \\boxed{9}", "gsm8k", "7", "7", "9"),
    ("\\boxed{7}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n#### 9", "gsm8k", "7", "7", "9"),
    ("\\boxed{7}<end_of_turn>\n<start_of_turn>user\n\\boxed{9}", "gsm8k", "7", "7", "9"),
    ("\\boxed{7}</s>[INST] And 4 + 5? [/INST] \\boxed{9}", "gsm8k", "7", "7", "9"),
    ("\\boxed{7}<|end|>\n<|user|>\n\\boxed{9}", "gsm8k", "7", "7", "9"),
    ("The answer is (B).\n**Question:** Which is larger?\nThe answer is (C).", "aqua", "B", None, "C"),
    ("The answer is \\boxed{B}.\n### Question: next\n\\boxed{C}", "aqua", "B", "B", "C"),
    # a question turn at the very start (the model restates the question) is kept: the answer follows
    ("Question: Is X true?\nAnswer: yes\nQuestion: Is Y true?\nAnswer: no", "strategyqa", "yes", None, "no"),
    ("\n  Question: 3 + 4?\nThe answer is 7.", "gsm8k", "7", None, "7"),
    # not a new turn: the words inside a line, or "Answer:" / "Assistant:" lines
    ("The question: is it 5? Yes, the answer is 5.", "gsm8k", "5", None, "5"),
    ("Q is 4, so the answer is 8.", "gsm8k", "8", None, "8"),
    ("Let me check.\nAnswer: 12", "gsm8k", "12", None, "12"),
    # self-correction within the model's own answer still takes its last answer
    ("The answer is yes. Wait, penguins cannot fly, so the answer is no.", "strategyqa", "no", None, "no"),
    ("\\boxed{A}. Hmm, recheck: \\boxed{D}.\nQuestion: next?\n\\boxed{E}", "aqua", "D", "D", "E"),
]


@pytest.mark.parametrize("completion, task, default, strict, reference", RUN_ON)
def test_run_on_questions(completion, task, default, strict, reference):
    assert extract_answer(completion, task) == default
    assert extract_answer(completion, task, "strict") == strict
    assert extract_answer(completion, task, "reference") == reference


def test_cut_run_on():
    assert cut_run_on("The answer is no.\nQuestion: Is ...?\nAnswer: yes") == "The answer is no."
    assert cut_run_on("Question: first?\nyes\nQuestion: second?") == "Question: first?\nyes"
    assert cut_run_on("no run-on here") == "no run-on here"
    assert cut_run_on("") == ""
    # extra markers (e.g. lm-eval's stop strings) are literal, and also need some text before them
    assert cut_run_on("5\n\nNext:\n6", extra_markers=["Next:"]) == "5\n\n"
    assert cut_run_on("Next: 5 Next: 6", extra_markers=["Next:"]) == "Next: 5 "
    assert cut_run_on("a.b*c", extra_markers=[".*"]) == "a.b*c"  # not a regex


def test_run_on_cut_keeps_the_stored_completion():
    text = "The answer is 7.\nQuestion: more?\nAnswer: 9"
    assert extract_answer(text, "gsm8k") == "7" and text.endswith("Answer: 9")
