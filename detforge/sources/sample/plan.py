"""What the sample contains: every image, its boxes, and the planted cases.

An :class:`Entry` is one image file of one source; the planted cases are built here so the
writers (``formats.py``) stay format-only. The list of cases is docs/sample.md's table.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from detforge.sources.sample import render
from detforge.sources.sample.render import Box, Scene


@dataclasses.dataclass
class Entry:
    """One image of one source: file bytes, size, ``(concept, box)`` objects, extras."""

    source: str
    split: str
    key: str  # source image id
    data: bytes
    width: int
    height: int
    objects: tuple[tuple[str, Box], ...]
    group_of: tuple[int, ...] = ()  # indexes of OpenImages group-of boxes
    negatives: tuple[str, ...] = ()  # concepts verified absent (OpenImages, LVIS neg)
    not_exhaustive: tuple[str, ...] = ()  # LVIS
    outside: tuple[int, ...] = ()  # indexes of boxes written partly outside the image
    file: str = ""  # path under the sample root, set by the writer


@dataclasses.dataclass
class Plan:
    entries: list[Entry]
    cases: list[dict]


class _Builder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.entries: list[Entry] = []
        self.cases: list[dict] = []
        # Objects365 ids count up from here; like RELATIVE_SIZE's, the start is picked so that
        # `probe generate`'s hash split (seed 0) of the ~36 sample images leaves every task
        # items in every split
        self.o365_next = 1015
        self.coco_ids = iter(sorted(self.rng.choice(np.arange(1, 581929), 40, replace=False)))

    def scene(self, concepts: list[str], size: tuple[int, int], grid=None) -> Scene:
        grid = render.random_grid(self.rng) if grid is None else grid
        return Scene(grid, render.layout(self.rng, concepts), *size)

    def key(self, source: str) -> str:
        if source == "objects365":
            self.o365_next += 1
            return str(self.o365_next)
        if source == "openimages":
            return self.rng.bytes(8).hex()
        return str(int(next(self.coco_ids)))  # LVIS / COCO share COCO image ids

    def add(self, source, split, image, objects, quality=90, key=None, **extra) -> Entry:
        entry = Entry(
            source, split, key or self.key(source), render.encode(image, quality),
            image.width, image.height, objects, **extra,
        )  # fmt: skip
        self.entries.append(entry)
        return entry

    def plain(self, source, split, concepts, size, **extra) -> Entry:
        scene = self.scene(concepts, size)
        return self.add(source, split, render.draw(scene), scene.objects, **extra)

    def case(self, name: str, what: str, entries: list[Entry], **facts) -> None:
        self.cases.append({"case": name, "what": what, "images": entries, **facts})


def _jitter(rng: np.random.Generator, objects, amount: float = 0.008):
    """Another annotator's boxes of the same objects (IoU stays > 0.8 for boxes ≥ 0.14)."""
    out = []
    for concept, box in objects:
        moved = np.clip(np.asarray(box) + rng.uniform(-amount, amount, 4), 0.0, 1.0)
        out.append((concept, tuple(round(float(v), 4) for v in moved)))
    return tuple(out)


def build(seed: int) -> Plan:
    """The sample's images and planted cases for ``seed``."""
    b = _Builder(seed)
    rng = b.rng

    # same photo in two sources: resized + re-encoded, same framing
    s1 = b.scene(["car", "car", "person"], (640, 480))
    o1 = b.add("objects365", "train", render.draw(s1), s1.objects, quality=90)
    i1 = b.add(
        "openimages", "train", render.resized(render.draw(s1), 800, 600),
        _jitter(rng, s1.objects), quality=70, negatives=("dog",),
    )  # fmt: skip
    b.case("same_photo", "one photo in two sources, resized 640x480 -> 800x600 and re-encoded "
           "(JPEG q90 -> q70), same framing; the two sources' boxes of the same objects overlap "
           "(IoU > 0.8 after normalisation)", [o1, i1])  # fmt: skip

    # exact duplicate (byte-identical file) across two sources
    s2 = b.scene(["horse", "person"], (640, 480))
    l1 = b.add("lvis", "train", render.draw(s2), s2.objects)
    i2 = dataclasses.replace(
        l1, source="openimages", key=b.key("openimages"), objects=_jitter(rng, s2.objects)
    )
    b.entries.append(i2)
    b.case(
        "exact_duplicate",
        "byte-identical JPEG in OpenImages train and LVIS train (COCO train2017)",
        [i2, l1],
    )

    # cropped near-copy: not the same framing
    s3 = b.scene(["bus", "person", "dog"], (640, 480))
    o2 = b.add("objects365", "train", render.draw(s3), s3.objects)
    i3 = b.add(
        "openimages",
        "train",
        render.cropped(render.draw(s3), 0.96),
        render.crop_boxes(s3.objects, 0.96),
        quality=85,
    )
    b.case("cropped_copy", "the same photo with its right 4% cropped away (614x480: a near "
           "duplicate of another aspect ratio, not the same framing): grouped with the original, "
           "its boxes are not carried and it is removed with the reason", [o2, i3])  # fmt: skip

    # look-alike non-duplicates
    s4 = b.scene(["cup", "bottle"], (500, 375))
    o3 = b.add("objects365", "train", render.draw(s4), s4.objects)
    s4b = b.scene(["cup", "bottle"], (500, 375), grid=render.look_alike_grid(s4.grid))
    i4 = b.add("openimages", "train", render.draw(s4b), s4b.objects)
    b.case("look_alike", "two different generated photos with the same colours (background "
           "turned 180°, objects elsewhere): NOT duplicates, must not be merged", [o3, i4])  # fmt: skip

    # contamination: a COCO val2017 photo resized into Objects365 train
    s5 = b.scene(["dog", "person", "car"], (640, 480))
    c1 = b.add("lvis", "val", render.draw(s5), s5.objects, not_exhaustive=("person",))
    o4 = b.add(
        "objects365", "train", render.resized(render.draw(s5), 512, 384), s5.objects, quality=85
    )
    b.case("contaminated", "an Objects365 TRAIN image that is a resized (640x480 -> 512x384) "
           "copy of a COCO val2017 image (listed in coco/annotations/instances_val2017.json "
           "and in LVIS val)", [o4, dataclasses.replace(c1, source="coco"), c1],
           eval_set="coco/annotations/instances_val2017.json")  # fmt: skip

    # rare LVIS class in val
    c2 = b.plain("lvis", "val", ["ping_pong_ball", "person"], (640, 427), negatives=("dumbbell",))
    b.case("rare_class_val", "an LVIS val image with a box of a rare ('r') class: ping-pong_ball "
           "(808)", [c2], source_label="808", frequency="r")  # fmt: skip
    c3 = b.plain(
        "lvis",
        "val",
        ["bus", "car", "bicycle"],
        (500, 375),
        negatives=("horse",),
        not_exhaustive=("car",),
    )
    c4 = b.plain("lvis", "val", ["cat", "chair"], (427, 640))

    # OpenImages group-of box over a crowd of people
    s6 = b.scene(["person", "person", "person"], (640, 480))
    xs = [box for _, box in s6.objects]
    group = (
        "person",
        (
            min(x[0] for x in xs),
            min(x[1] for x in xs),
            max(x[2] for x in xs),
            max(x[3] for x in xs),
        ),
    )
    i5 = b.add("openimages", "train", render.draw(s6), (*s6.objects, group), group_of=(3,))
    b.case(
        "group_of",
        "an OpenImages box with IsGroupOf=1 around three people (plus their own boxes)",
        [i5],
    )

    b.plain("openimages", "train", ["limousine", "wheel", "wheel"], (640, 427))
    i7 = b.plain("openimages", "train", ["dog", "cat"], (640, 480), negatives=("horse", "car"))
    b.plain("openimages", "train", ["bicycle", "bicycle"], (480, 640))
    b.plain("openimages", "train", ["bottle", "cup", "cup"], (320, 240))
    iv1 = b.plain("openimages", "val", ["person", "car"], (640, 480), negatives=("cat",))
    b.plain("openimages", "val", ["dog", "dog"], (512, 384))
    b.plain("openimages", "val", ["bus"], (640, 480))
    b.case("verified_labels", "OpenImages human-verified image labels: Confidence 1 (positive) "
           "for every boxed class, Confidence 0 (negative) for a class absent from the image",
           [i1, i7, iv1])  # fmt: skip

    # Objects365: trailing-space names, a box partly outside the image, counting
    o5 = b.plain("objects365", "train", ["ping_pong_ball", "person", "person"], (640, 427))
    b.case("trailing_space_names", "Objects365 raw category names with trailing spaces "
           "('Table Tennis ' id 365, 'Cigar/Cigarette ' id 197) and a typo ('Moniter/TV' id 38); "
           "this image has a 'Table Tennis ' box", [o5], source_labels=["365", "197", "38"])  # fmt: skip
    o6 = b.plain("objects365", "train", ["horse", "horse"], (480, 640), outside=(1,))
    b.case("box_outside_image", "an Objects365 box running past the image's right edge: the "
           "reader clips it and records it in quarantine", [o6])  # fmt: skip
    o7 = b.plain("objects365", "train", ["dog", "dog", "dog"], (640, 480))
    b.plain("objects365", "train", ["chair", "chair", "bench", "cat"], (320, 240))
    b.plain("objects365", "train", ["dumbbell", "person"], (500, 333))
    b.plain("objects365", "train", ["bicycle", "person", "car", "car"], (640, 480))
    v1 = b.plain("objects365", "val", ["person", "person", "person", "person"], (640, 480))
    b.plain("objects365", "val", ["car", "bus"], (480, 360))
    b.plain("objects365", "val", ["cat", "cup"], (320, 240))
    b.case("counting", "images with several instances of one class (3 dogs; 4 people)", [o7, v1])

    # LVIS train: federated labels
    l2 = b.plain(
        "lvis",
        "train",
        ["car", "car", "wheel"],
        (640, 427),
        negatives=("dog",),
        not_exhaustive=("car",),
    )
    l3 = b.plain("lvis", "train", ["person", "person", "bench"], (500, 375), negatives=("cat",))
    b.plain("lvis", "train", ["limousine", "person"], (640, 480))
    b.plain("lvis", "train", ["cup", "bottle", "bottle"], (480, 640))
    b.case("lvis_federated", "LVIS images with neg_category_ids (verified absent) and "
           "not_exhaustive_category_ids (some instances not boxed)", [l2, l3, c1, c3])  # fmt: skip
    b.case("label_variants", "one class under each source's own name: Objects365 'Car' (6), "
           "OpenImages 'Car' (/m/0k4j), LVIS 'car_(automobile)' (207), COCO 'car' (3); people as "
           "Objects365 'Person', OpenImages 'Person'/'Man'/'Woman', LVIS 'person', COCO 'person'",
           [o1, i1, l2, c1], car={"objects365": "6", "openimages": "/m/0k4j", "lvis": "207", "coco": "3"})  # fmt: skip
    b.case("coco_lvis_shared", "LVIS val images are COCO val2017 photos: the same files, listed "
           "by both lvis/lvis_v1_val.json and coco/annotations/instances_val2017.json",
           [c1, c2, c3, c4])  # fmt: skip

    sizes = []
    for key, split, large in RELATIVE_SIZE:
        scene = _size_scene(b, large, "dog" if large == "bus" else "bus")
        sizes.append(b.add("objects365", split, render.draw(scene), scene.objects, key=key))
    b.case("relative_size", "one bus and one dog per image, one of them at least 6x the other's "
           "area: a bus larger than the dog and a dog larger than the bus in each of the probe "
           "set's train, val and test splits (seed 0), so size probes balance in every split",
           sizes, ratio_at_least=6.0)  # fmt: skip
    return Plan(b.entries, b.cases)


# (Objects365 id, Objects365 split, class drawn large) of the relative-size photos. The ids
# are the same for every sample seed and are picked so that `probe generate`'s hash split
# (seed 0) puts a bus-larger and a dog-larger photo in each of its train, val and test splits.
RELATIVE_SIZE = (
    ("2001", "train", "bus"),  # probe split train
    ("2003", "train", "dog"),  # train
    ("2002", "val", "bus"),  # val
    ("2013", "val", "dog"),  # val
    ("2004", "train", "bus"),  # test
    ("2006", "train", "dog"),  # test
)


def _size_scene(b: _Builder, large: str, small: str) -> Scene:
    """A large box on one side and a small one on the other (area ratio ≥ 0.45² / 0.18²)."""
    rng = b.rng
    lw, lh, sw, sh = rng.uniform(0.45, 0.6), rng.uniform(0.45, 0.6), *rng.uniform(0.12, 0.18, 2)
    lx, ly = rng.uniform(0.02, 0.05), rng.uniform(0.02, 0.98 - lh)
    sx, sy = rng.uniform(0.7, 0.98 - sw), rng.uniform(0.02, 0.98 - sh)
    if rng.random() < 0.5:  # mirror: the large box on the right half
        lx, sx = 1 - lx - lw, 1 - sx - sw
    boxes = ((lx, ly, lx + lw, ly + lh), (sx, sy, sx + sw, sy + sh))
    objects = tuple(
        (concept, tuple(round(float(v), 4) for v in box))
        for concept, box in zip((large, small), boxes, strict=True)
    )
    return Scene(render.random_grid(rng), objects, 640, 480)
