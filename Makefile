# The two commands the README promises. Each sets up what it needs (.venv, Docker engine, images).
.PHONY: demo test unit lab lint down

demo:  ## lab fleet up, provisioned, real mail through every variant, a result table
	scripts/bootstrap.sh --engine .venv/bin/maillab demo

test:  ## every test: the lint gate, the unit tests, then the lab tests (real containers); a failing step ends it
	scripts/bootstrap.sh scripts/lint.sh
	scripts/bootstrap.sh .venv/bin/python -m pytest -m "not lab"
	scripts/bootstrap.sh .venv/bin/python -m pytest -m lab

unit:  ## the fast tests only (no Docker)
	scripts/bootstrap.sh .venv/bin/python -m pytest -m "not lab"

lab:   ## the lab tests only
	scripts/bootstrap.sh .venv/bin/python -m pytest -m lab

lint:  ## the lint gate alone: ansible-lint (production profile), yamllint, ruff; no Docker
	scripts/bootstrap.sh scripts/lint.sh

down:  ## remove the lab
	scripts/bootstrap.sh .venv/bin/maillab down
