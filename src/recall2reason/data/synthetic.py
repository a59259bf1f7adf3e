"""Seeded synthetic math word problems for the offline demo study.

Two styles, each returned in the schema of the real data set it stands in for:

* ``gsm8k``: several named people bound to quantities, multi-step updates (gives, buys,
  loses, multiplies), distractor numbers, a final question. The worked solution has one
  line per step with GSM8K calculator annotations ``<<a+b=c>>`` and ends with ``#### N``.
  Rows look like GSM8K: ``{"question", "answer"}``.
* ``math``: LaTeX problems (variable tracking with substitutions, linear equations,
  remainders) whose solution ends in ``\\boxed{N}``. Rows look like MATH-500:
  ``{"problem", "solution", "answer", "subject", "level", "unique_id"}``.

Every problem is generated from its own ``random.Random`` seeded by (style, stream, seed,
index): generation is deterministic, order-free and can start at any index. Training
documents use stream ``"train"``, eval sets stream ``"eval"``, so an eval set never
shares a random stream with the training corpus even under the same seed.
"""

from __future__ import annotations

import random
from typing import Iterator, Literal

Style = Literal["gsm8k", "math"]
Stream = Literal["train", "eval"]

NAMES = [
    "Ava", "Ben", "Cara", "Dev", "Elena", "Farid", "Grace", "Hugo", "Iris", "Jamal", "Kira", "Liam",
    "Maya", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Victor", "Wen", "Yusuf",
]
ITEMS = [
    "apples", "marbles", "stickers", "books", "pencils", "cookies", "shells", "stamps", "coins",
    "cards", "balloons", "beads", "crayons", "eggs", "plums", "tickets",
]
DISTRACTORS = [
    "{n} is {k} years old.",
    "{n} lives {k} miles from school.",
    "{n}'s house has {k} windows.",
    "{n} walked {k} blocks on Monday.",
    "{n} also has {k} {other}.",
]
VARS = ["a", "b", "c", "d", "m", "n", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z"]


def _rng(style: str, stream: str, seed: int, index: int) -> random.Random:
    # String seeds are hashed with sha512 by `random`: stable across runs and platforms.
    return random.Random(f"r2r-synthetic/{style}/{stream}/{seed}/{index}")


# ---------------------------------------------------------------------------- GSM8K style

def _calc(a: int, op: str, b: int, annotate: bool) -> tuple[str, int]:
    c = {"+": a + b, "-": a - b, "*": a * b}[op]
    expr = f"{a} {op} {b}"
    ann = f"<<{a}{op}{b}={c}>>" if annotate else ""
    return f"{expr} = {ann}{c}", c


def gsm8k_problem(seed: int, index: int, stream: Stream = "train", annotate: bool = True) -> dict:
    r = _rng("gsm8k", stream, seed, index)
    k = r.randint(2, 4)
    people = r.sample(NAMES, k)
    item, other = r.sample(ITEMS, 2)
    have = {p: r.randint(3, 30) for p in people}
    facts = [f"{p} has {have[p]} {item}." for p in people]
    for _ in range(r.randint(1, 2)):  # numbers that play no part in the answer
        facts.insert(r.randint(1, len(facts)), r.choice(DISTRACTORS).format(n=r.choice(people), k=r.randint(2, 40), other=other))
    steps, lines = [], []
    for _ in range(r.randint(2, 4)):
        kind = r.choice(["give", "buy", "lose", "mult"])
        p = r.choice(people)
        if kind == "give":
            q = r.choice([x for x in people if x != p])
            if have[p] < 2:
                kind = "buy"
            else:
                n = r.randint(1, have[p] - 1)
                steps.append(f"{p} gives {n} {item} to {q}.")
                s1, have[p] = _calc(have[p], "-", n, annotate)
                s2, have[q] = _calc(have[q], "+", n, annotate)
                lines.append(f"{p} gives away {n}, so {p} has {s1} {item} and {q} has {s2} {item}.")
                continue
        if kind == "buy":
            n = r.randint(2, 20)
            steps.append(f"{p} buys {n} more {item}.")
            s, have[p] = _calc(have[p], "+", n, annotate)
            lines.append(f"After buying, {p} has {s} {item}.")
        elif kind == "lose":
            if have[p] < 2:
                n = r.randint(2, 9)
                steps.append(f"{p} finds {n} {item}.")
                s, have[p] = _calc(have[p], "+", n, annotate)
                lines.append(f"After finding some, {p} has {s} {item}.")
            else:
                n = r.randint(1, have[p] - 1)
                steps.append(f"{p} loses {n} {item}.")
                s, have[p] = _calc(have[p], "-", n, annotate)
                lines.append(f"After losing some, {p} has {s} {item}.")
        else:
            m = r.choice([2, 3])
            word = {2: "doubles", 3: "triples"}[m]
            steps.append(f"{p} {word} the number of {item} they have.")
            s, have[p] = _calc(have[p], "*", m, annotate)
            lines.append(f"{p} {word} their {item}: {s}.")
    if r.random() < 0.5:
        p = r.choice(people)
        question = f"How many {item} does {p} have now?"
        answer = have[p]
        lines.append(f"{p} has {answer} {item} in the end.")
    else:
        p, q = r.sample(people, 2)
        question = f"How many {item} do {p} and {q} have together now?"
        s, answer = _calc(have[p], "+", have[q], annotate)
        lines.append(f"Together they have {s} {item}.")
    lines.append(f"#### {answer}")
    return {"question": " ".join(facts + steps + [question]), "answer": "\n".join(lines), "_answer": answer}


# ----------------------------------------------------------------------------- MATH style

def math_problem(seed: int, index: int, stream: Stream = "train") -> dict:
    r = _rng("math", stream, seed, index)
    kind = r.choice(["tracking", "tracking", "linear", "remainder"])
    if kind == "tracking":
        problem, lines, answer, level = _math_tracking(r)
        subject = "Algebra"
    elif kind == "linear":
        a, x, b = r.randint(2, 12), r.randint(-20, 30), r.randint(-40, 40)
        c = a * x + b
        bs = f"+ {b}" if b >= 0 else f"- {-b}"
        problem = f"Solve for $x$: ${a}x {bs} = {c}$."
        lines = [
            f"Subtracting ${b}$ from both sides gives ${a}x = {c} - ({b}) = {c - b}$.",
            f"Dividing both sides by ${a}$ gives $x = {c - b} / {a} = {x}$.",
        ]
        answer, level, subject = x, 2, "Prealgebra"
    else:
        a, b, m = r.randint(10, 99), r.randint(10, 99), r.randint(3, 13)
        problem = f"What is the remainder when ${a} \\cdot {b}$ is divided by ${m}$?"
        lines = [
            f"We have ${a} \\cdot {b} = {a * b}$.",
            f"Since ${a * b} = {m} \\cdot {a * b // m} + {a * b % m}$, the remainder is ${a * b % m}$.",
        ]
        answer, level, subject = a * b % m, 3, "Number Theory"
    lines.append(f"The answer is $\\boxed{{{answer}}}$.")
    return {
        "problem": problem,
        "solution": " ".join(lines),
        "answer": str(answer),
        "subject": subject,
        "level": level,
        "unique_id": f"synthetic/{stream}/{seed}/{index}",
    }


def _math_tracking(r: random.Random) -> tuple[str, list[str], int, int]:
    names = r.sample(VARS, r.randint(3, 5))
    val = {v: r.randint(1, 12) for v in names}
    used = names[:-1]  # the last variable is a distractor: defined, never used
    setup = "Let " + ", ".join(f"${v} = {val[v]}$" for v in names[:-1]) + f" and ${names[-1]} = {val[names[-1]]}$."
    updates, lines = [], []
    for step in range(r.randint(2, 4)):
        v = r.choice(used)
        if r.random() < 0.5:
            w = r.choice([u for u in used if u != v])
            updates.append(f"${v}$ is replaced by ${v} + {w}$")
            new = val[v] + val[w]
            lines.append(f"Now ${v} = {val[v]} + {val[w]} = {new}$.")
        else:
            k = r.randint(2, 4)
            updates.append(f"${v}$ is replaced by ${k}{v}$")
            new = k * val[v]
            lines.append(f"Now ${v} = {k} \\cdot {val[v]} = {new}$.")
        val[v] = new
    p, q = r.sample(used, 2)
    answer = val[p] + val[q]
    lines.append(f"Therefore ${p} + {q} = {val[p]} + {val[q]} = {answer}$.")
    order = ", then ".join(updates)
    problem = f"{setup} First {order}. What is the value of ${p} + {q}$ after these updates?"
    return problem, lines, answer, min(5, 1 + len(updates))


# ------------------------------------------------------------------------------ iterators

def generate(style: Style, n: int, seed: int, stream: Stream = "train", start: int = 0) -> Iterator[dict]:
    """Rows ``start .. n-1`` of the given style, in the schema of the data set it mimics."""
    for i in range(start, n):
        if style == "gsm8k":
            row = gsm8k_problem(seed, i, stream)
            row.pop("_answer")
            yield row
        elif style == "math":
            yield math_problem(seed, i, stream)
        else:
            raise ValueError(f"unknown synthetic style {style!r} (gsm8k | math)")
