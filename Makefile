# Two commands do all set-up: `make demo` (main job on the built-in sample) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(VENV)/bin/pip
DEMO_OUT ?= out/demo
# mmcv 2.1.0 has no wheel on PyPI: it compiles (about 5 min on 2 cores) unless a
# prebuilt wheel is on PIP_FIND_LINKS (.ci/run adds ../shared/wheels when present).
MMCV_BUILD := MAX_JOBS=2 FORCE_CUDA=0 MMCV_WITH_OPS=1 CFLAGS="-O3 -g0 -DNDEBUG -fwrapv"

.PHONY: setup demo test lint format clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install torch==2.13.0
	$(PIP) install "setuptools<81" wheel ninja
	$(MMCV_BUILD) $(PIP) install --no-build-isolation mmcv==2.1.0
	$(PIP) install -e ".[all,dev]"
	# mmcv pulls opencv-python, fiftyone the headless build: both write cv2; headless wins.
	$(PIP) install --force-reinstall --no-deps "opencv-python-headless==$$($(PY) -c 'import importlib.metadata as m; print(m.version("opencv-python-headless"))')"
	touch $@

demo: setup
	DETFORGE=$(VENV)/bin/detforge bash scripts/demo.sh $(DEMO_OUT)

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest -q

lint: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf out .pytest_cache
