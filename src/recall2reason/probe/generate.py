"""Seeded recall probes in the training's text format: bind k keys to numbers, ask for one.

Four kinds, each a ``Question: ...\\nAnswer:`` prompt whose answer is one integer:

* ``binding``: k named people each holding a number of one item ("Ava has 12 apples."), then
  "How many apples does Ben have now?".
* ``distractor``: the same plus one sentence with another number about each of the people
  ("Ben's locker number is 31.", "Ava also has 9 stamps.").
* ``update``: the same bindings, then half the keys are overwritten ("Later, Ben has 40 apples
  instead."); the queried key is always among them, so an answer of its first value is a
  state-tracking error.
* ``mqar``: a plain key-value list in the style of multi-query associative recall (Zoology):
  "Each code stands for a number: KQ 41, ZB 7, ... What number does ZB stand for?". One query per
  prompt.

Every number of a probe is distinct, so a wrong answer tells which number the model recalled: the
value of another key, the queried key's overwritten value, a distractor, or none of them.

Distance: ``distance_sentences`` is how many sentences (list pairs for ``mqar``) stand between the
queried key's last write and the question. The config gives it as a share of its possible range,
rounded half up: 0 puts the write right before the question, 1 as far from it as the probe
allows (the first sentence; the second for ``update``, whose first write of the key must come
before its overwrite).

Each probe comes from its own ``random.Random`` seeded by (seed, kind, k, distance, index), so a
probe set is deterministic, order-free and the same on every platform.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from itertools import product

from recall2reason.data.synthetic import ITEMS, NAMES as SYNTHETIC_NAMES
from recall2reason.data.template import format_prompt
from recall2reason.probe.config import MAX_K, ProbeConfig, n_updates, numbers_needed

GENERATOR = "r2r-probes-v1"  # the generator's identity, written into every probe row

# the demo corpus's names first, then common first names from several languages
NAMES = SYNTHETIC_NAMES + [
    "Amir", "Bella", "Chen", "Diego", "Emma", "Felix", "Gita", "Hana", "Ivan", "Jonas", "Kofi", "Lena",
    "Marco", "Nina", "Omar", "Priya", "Raj", "Sofia", "Tom", "Ursula", "Vera", "Wanda", "Xavier", "Yara",
    "Zoe", "Anton", "Bruno", "Clara", "Dmitri", "Eva", "Fatima", "Gabriel", "Helga", "Isaac", "Julia",
    "Karim", "Lucia", "Mateo", "Nadia", "Oscar",
]
assert len(set(NAMES)) == len(NAMES) >= MAX_K
# two consonants: short keys that are no English word
CODES = ["".join(p) for p in product("BCDFGHJKLMNPQRSTVWXZ", repeat=2)]
DISTRACTORS = [
    "{name} also has {v} {other}.",
    "{name}'s locker number is {v}.",
    "{name} walked {v} steps before lunch.",
    "{name} lives {v} meters from the park.",
    "{name}'s bus is number {v}.",
]


@dataclass
class Write:
    key: str
    value: int
    role: str  # "bind" | "update" | "distract"


def _rng(seed: int, kind: str, k: int, distance: float, index: int) -> random.Random:
    # string seeds are hashed with sha512 by `random`: stable across runs and platforms
    return random.Random(f"r2r-probe/{seed}/{kind}/{k}/{distance!r}/{index}")


def target_distance(distance: float, n_sentences: int, earliest: int) -> int:
    """Sentences between the queried write and the question for a distance share in [0, 1]."""
    return math.floor(distance * (n_sentences - 1 - earliest) + 0.5)


def make_probe(kind: str, k: int, distance: float, index: int, seed: int, max_value: int) -> dict:
    r = _rng(seed, kind, k, distance, index)
    numbers = iter(r.sample(range(2, max_value + 1), numbers_needed(kind, k)))
    keys = r.sample(CODES if kind == "mqar" else NAMES, k)
    item, other = r.sample(ITEMS, 2)
    target = keys[0]  # keys come in random order: the first is a random one
    binds = {key: Write(key, next(numbers), "bind") for key in keys}
    rest = [binds[key] for key in keys[1:]]
    if kind == "distractor":
        rest += [Write(key, next(numbers), "distract") for key in keys]  # one about each person
    updates = {}
    if kind == "update":
        for key in keys[: n_updates(k)]:
            updates[key] = Write(key, next(numbers), "update")
        rest += [updates[key] for key in keys[1 : n_updates(k)]]
    last = updates.get(target, binds[target])  # the write the question asks for

    n = len(rest) + 1 + (kind == "update")
    earliest = 1 if kind == "update" else 0  # an overwrite needs its binding before it
    d = target_distance(distance, n, earliest)
    slots: list[Write | None] = [None] * n
    slots[n - 1 - d] = last
    if kind == "update":
        slots[r.randrange(0, n - 1 - d)] = binds[target]
    r.shuffle(rest)
    free = iter(i for i, s in enumerate(slots) if s is None)
    for w in rest:
        slots[next(free)] = w
    for key, upd in updates.items():  # each overwrite after its binding: swap the pair if not
        i, j = slots.index(binds[key]), slots.index(upd)
        if j < i:
            slots[i], slots[j] = upd, binds[key]

    if kind == "mqar":
        sentences = [f"{w.key} {w.value}" for w in slots]
        head, sep, tail = "Each code stands for a number: ", ", ", f". What number does {target} stand for?"
    else:
        sentences = [_sentence(w, item, other, r) for w in slots]
        head, sep, tail = "", " ", f" How many {item} does {target} have now?"
    question = head + sep.join(sentences) + tail
    after = sentences[n - d :]  # between the queried write and the question, each after a separator
    return {
        "id": f"{kind}-k{k:02d}-d{distance:.2f}-{index:03d}",
        "kind": kind,
        "k": k,
        "distance": distance,
        "distance_sentences": d,
        "distance_chars": sum(len(sep) + len(x) for x in after),
        "n_sentences": n,
        "key": target,
        "question": question,
        "prompt": format_prompt(question),
        "gold": last.value,
        "stale": [binds[target].value] if target in updates else [],
        "other_keys": sorted(w.value for w in slots if w.role != "distract" and w.key != target),
        "distractors": sorted(w.value for w in slots if w.role == "distract"),
        "seed": seed,
        "generator": GENERATOR,
    }


def _sentence(w: Write, item: str, other: str, r: random.Random) -> str:
    if w.role == "bind":
        return f"{w.key} has {w.value} {item}."
    if w.role == "update":
        return f"Later, {w.key} has {w.value} {item} instead."
    return r.choice(DISTRACTORS).format(name=w.key, v=w.value, other=other)


def probe_set(cfg: ProbeConfig) -> list[dict]:
    """Every probe of the config, ordered by kind, k, distance, index."""
    return [
        make_probe(kind, k, distance, i, cfg.seed, cfg.max_value)
        for kind in cfg.kinds
        for k in cfg.ks
        for distance in cfg.distances
        for i in range(cfg.per_cell)
    ]
