"""The sample's classes: a hard-coded handful of REAL ids, names and MIDs of each source.

A *concept* is what the sample draws (a coloured shape); each source labels it with its
own real class id. All of them map into BigDetection's 600 classes.
"""

from __future__ import annotations

#: concept -> drawing colour, shape, and each source's real label (None: not in that source)
CONCEPTS: dict[str, dict] = {
    "person": {"colour": (220, 20, 60), "shape": "ellipse", "objects365": 1, "openimages": ["/m/01g317", "/m/04yx4", "/m/03bt1vf"], "lvis": 793, "coco": 1},
    "car": {"colour": (0, 0, 142), "shape": "rectangle", "objects365": 6, "openimages": ["/m/0k4j"], "lvis": 207, "coco": 3},
    "dog": {"colour": (160, 82, 45), "shape": "ellipse", "objects365": 93, "openimages": ["/m/0bt9lr"], "lvis": 378, "coco": 18},
    "horse": {"colour": (110, 60, 20), "shape": "rectangle", "objects365": 79, "openimages": ["/m/03k3r"], "lvis": 569, "coco": 19},
    "bicycle": {"colour": (119, 11, 32), "shape": "ellipse", "objects365": 47, "openimages": ["/m/0199g"], "lvis": 94, "coco": 2},
    "bus": {"colour": (250, 170, 30), "shape": "rectangle", "objects365": 56, "openimages": ["/m/01bjv"], "lvis": 173, "coco": 6},
    "chair": {"colour": (100, 170, 30), "shape": "rectangle", "objects365": 3, "openimages": ["/m/01mzpv"], "lvis": 232, "coco": 62},
    "bottle": {"colour": (0, 130, 200), "shape": "rectangle", "objects365": 9, "openimages": ["/m/04dr76w"], "lvis": 133, "coco": 44},
    "cup": {"colour": (255, 255, 255), "shape": "ellipse", "objects365": 11, "openimages": ["/m/02p5f1q"], "lvis": 344, "coco": 47},
    "cat": {"colour": (60, 60, 60), "shape": "ellipse", "objects365": 140, "openimages": ["/m/01yrx"], "lvis": 225, "coco": 17},
    "bench": {"colour": (140, 140, 40), "shape": "rectangle", "objects365": 25, "openimages": ["/m/0cvnqh"], "lvis": 90, "coco": 15},
    "ping_pong_ball": {"colour": (250, 250, 235), "shape": "ellipse", "objects365": 365, "openimages": ["/m/018xm"], "lvis": 808, "coco": 37},
    "dumbbell": {"colour": (30, 30, 30), "shape": "rectangle", "objects365": 323, "openimages": ["/m/04h8sr"], "lvis": 405, "coco": None},
    "limousine": {"colour": (15, 15, 15), "shape": "rectangle", "objects365": None, "openimages": ["/m/01lcw4"], "lvis": 648, "coco": None},
    "wheel": {"colour": (20, 20, 20), "shape": "ellipse", "objects365": None, "openimages": ["/m/083wq"], "lvis": 1178, "coco": None},
}  # fmt: skip

#: Objects365 v2 categories (id, raw name: typos and trailing spaces verbatim)
OBJECTS365 = [
    (1, "Person"), (3, "Chair"), (6, "Car"), (9, "Bottle"), (11, "Cup"), (25, "Bench"),
    (38, "Moniter/TV"), (47, "Bicycle"), (56, "Bus"), (79, "Horse"), (93, "Dog"), (140, "Cat"),
    (197, "Cigar/Cigarette "), (323, "Dumbbell"), (365, "Table Tennis "),
]  # fmt: skip

#: OpenImages boxable classes (MID, DisplayName)
OPENIMAGES = [
    ("/m/01g317", "Person"), ("/m/04yx4", "Man"), ("/m/03bt1vf", "Woman"),
    ("/m/02p0tk3", "Human body"), ("/m/0dzct", "Human face"), ("/m/07yv9", "Vehicle"),
    ("/m/01prls", "Land vehicle"), ("/m/0k4j", "Car"), ("/m/01lcw4", "Limousine"),
    ("/m/01bjv", "Bus"), ("/m/0199g", "Bicycle"), ("/m/08dz3q", "Auto part"), ("/m/083wq", "Wheel"),
    ("/m/0jbk", "Animal"), ("/m/04rky", "Mammal"), ("/m/01lrl", "Carnivore"), ("/m/0bt9lr", "Dog"),
    ("/m/01yrx", "Cat"), ("/m/03k3r", "Horse"), ("/m/0c_jw", "Furniture"), ("/m/01mzpv", "Chair"),
    ("/m/0cvnqh", "Bench"), ("/m/04brg2", "Tableware"), ("/m/011q46kg", "Container"),
    ("/m/04dr76w", "Bottle"), ("/m/02p5f1q", "Coffee cup"), ("/m/05y5lj", "Sports equipment"),
    ("/m/018xm", "Ball"), ("/m/04h8sr", "Dumbbell"),
]  # fmt: skip


def _node(mid: str, sub: list | None = None, part: list | None = None) -> dict:
    node: dict = {"LabelName": mid}
    if sub:
        node["Subcategory"] = sub
    if part:
        node["Part"] = part
    return node


def openimages_hierarchy() -> dict:
    """The real ``bbox_labels_600_hierarchy.json`` edges among the sample's MIDs (a DAG:
    Bicycle and Bottle have two parents; Part edges for Human body/face and Auto part)."""
    face = _node("/m/0dzct")
    body = _node("/m/02p0tk3", part=[face])
    auto_part = _node("/m/08dz3q", sub=[_node("/m/083wq")])
    car = _node("/m/0k4j", sub=[_node("/m/01lcw4")])
    land = _node("/m/01prls", sub=[car, _node("/m/01bjv"), _node("/m/0199g")], part=[auto_part])
    carnivore = _node("/m/01lrl", sub=[_node("/m/0bt9lr"), _node("/m/01yrx")])
    return _node(
        "/m/0bl9f",
        sub=[
            _node("/m/01g317", sub=[_node("/m/04yx4"), _node("/m/03bt1vf")], part=[body]),
            body,
            face,
            _node("/m/07yv9", sub=[land]),
            auto_part,
            _node("/m/0jbk", sub=[_node("/m/04rky", sub=[_node("/m/03k3r"), carnivore])]),
            _node("/m/0c_jw", sub=[_node("/m/01mzpv"), _node("/m/0cvnqh")]),
            _node("/m/04brg2", sub=[_node("/m/04dr76w"), _node("/m/02p5f1q")]),
            _node("/m/011q46kg", sub=[_node("/m/04dr76w")]),
            _node("/m/05y5lj", sub=[_node("/m/0199g"), _node("/m/018xm"), _node("/m/04h8sr")]),
        ],
    )


#: LVIS v1 categories as in lvis_v1_*.json (train-split image/instance counts)
LVIS = [
    {"id": 90, "name": "bench", "synset": "bench.n.01", "synonyms": ["bench"], "def": "a long seat for more than one person", "frequency": "f", "image_count": 1922, "instance_count": 4374},
    {"id": 94, "name": "bicycle", "synset": "bicycle.n.01", "synonyms": ["bicycle", "bike_(bicycle)"], "def": "a wheeled vehicle that has two wheels and is moved by foot pedals", "frequency": "f", "image_count": 1852, "instance_count": 4566},
    {"id": 133, "name": "bottle", "synset": "bottle.n.01", "synonyms": ["bottle"], "def": "a glass or plastic vessel used for storing drinks or other liquids", "frequency": "f", "image_count": 1901, "instance_count": 7969},
    {"id": 173, "name": "bus_(vehicle)", "synset": "bus.n.01", "synonyms": ["bus_(vehicle)", "autobus", "charabanc", "double-decker", "motorbus", "motorcoach"], "def": "a vehicle carrying many passengers; used for public transport", "frequency": "f", "image_count": 1808, "instance_count": 3281},
    {"id": 207, "name": "car_(automobile)", "synset": "car.n.01", "synonyms": ["car_(automobile)", "auto_(automobile)", "automobile"], "def": "a motor vehicle with four wheels", "frequency": "f", "image_count": 1926, "instance_count": 10528},
    {"id": 225, "name": "cat", "synset": "cat.n.01", "synonyms": ["cat"], "def": "a domestic house cat", "frequency": "f", "image_count": 1918, "instance_count": 2387},
    {"id": 232, "name": "chair", "synset": "chair.n.01", "synonyms": ["chair"], "def": "a seat for one person, with a support for the back", "frequency": "f", "image_count": 1927, "instance_count": 11549},
    {"id": 344, "name": "cup", "synset": "cup.n.01", "synonyms": ["cup"], "def": "a small open container usually used for drinking; usually has a handle", "frequency": "f", "image_count": 1521, "instance_count": 4637},
    {"id": 378, "name": "dog", "synset": "dog.n.01", "synonyms": ["dog"], "def": "a common domesticated dog", "frequency": "f", "image_count": 1938, "instance_count": 2684},
    {"id": 405, "name": "dumbbell", "synset": "dumbbell.n.01", "synonyms": ["dumbbell"], "def": "an exercising weight with two ball-like ends connected by a short handle", "frequency": "r", "image_count": 6, "instance_count": 13},
    {"id": 569, "name": "horse", "synset": "horse.n.01", "synonyms": ["horse"], "def": "a common horse", "frequency": "f", "image_count": 1904, "instance_count": 4744},
    {"id": 648, "name": "limousine", "synset": "limousine.n.01", "synonyms": ["limousine"], "def": "long luxurious car; usually driven by a chauffeur", "frequency": "r", "image_count": 5, "instance_count": 6},
    {"id": 793, "name": "person", "synset": "person.n.01", "synonyms": ["person", "baby", "child", "boy", "girl", "man", "woman", "human"], "def": "a human being", "frequency": "f", "image_count": 1928, "instance_count": 13439},
    {"id": 808, "name": "ping-pong_ball", "synset": "ping-pong_ball.n.01", "synonyms": ["ping-pong_ball"], "def": "light hollow ball used in playing table tennis", "frequency": "r", "image_count": 4, "instance_count": 4},
    {"id": 1178, "name": "wheel", "synset": "wheel.n.01", "synonyms": ["wheel"], "def": "a circular frame with spokes (or a solid disc) that can rotate on a shaft or axle", "frequency": "f", "image_count": 1924, "instance_count": 11272},
]  # fmt: skip

#: COCO 2017 thing categories (id, name, supercategory)
COCO = [
    (1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"), (6, "bus", "vehicle"),
    (15, "bench", "outdoor"), (17, "cat", "animal"), (18, "dog", "animal"), (19, "horse", "animal"),
    (37, "sports ball", "sports"), (44, "bottle", "kitchen"), (47, "cup", "kitchen"),
    (62, "chair", "furniture"),
]  # fmt: skip

LICENSES = [
    {"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4, "name": "Attribution License"}
]
