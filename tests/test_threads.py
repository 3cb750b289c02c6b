"""One Renderer renders from many threads at once: no render state lives in module globals,
so each render gives what a serial run gives."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from helpers import full_plan, minimal_plan

from bottlegen import Renderer, host


def varied_plans() -> list[dict]:
    plans = []
    for i in range(48):
        plan = full_plan(slug=f"t{i}") if i % 3 else minimal_plan(slug=f"t{i}")
        plan["forwarded_env"] = [f"VAR_{j}" for j in range(i % 7)] + (
            ["GITHUB_TOKEN", "GIT_AUTHOR_NAME"] if i % 2 else []
        )
        if i % 4 == 0:
            plan["hardening"] = "strict"
        if i % 5 == 0:
            plan["use_runsc"] = True
        plans.append(plan)
    return plans


def test_one_renderer_renders_from_eight_threads_as_it_does_serially():
    renderer = Renderer(view=host.lexical())
    plans = varied_plans()

    def render(plan: dict) -> str:
        return renderer.render_data(plan, "plan.yml", Path("/srv/plans"), "plan.yml").text

    serial = [render(plan) for plan in plans]
    assert len(set(serial)) == len(plans)  # every plan renders differently: a mix-up would show
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            assert list(pool.map(render, plans)) == serial
