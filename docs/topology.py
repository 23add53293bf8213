"""Draws docs/deployment-topology.png, the README's deployment picture: python docs/topology.py"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

OUT = Path(__file__).resolve().parent / "deployment-topology.png"
BLUE, GREEN, ORANGE, GREY, PURPLE = "#dbe8fb", "#dcf2dc", "#fde7cf", "#eeeeee", "#eadcf5"


def box(ax, x, y, w, h, title, lines=(), color=GREY, stacked=False):
    """A rounded box with a bold title; stacked draws replicas behind it."""
    if stacked:
        for d in (0.16, 0.08):
            ax.add_patch(
                FancyBboxPatch(
                    (x + d, y + d),
                    w,
                    h,
                    boxstyle="round,pad=0.02,rounding_size=0.12",
                    fc=color,
                    ec="#555555",
                    lw=0.8,
                )
            )
    ax.add_patch(
        FancyBboxPatch(
            (x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.12", fc=color, ec="#333333", lw=1.2
        )
    )
    ax.text(x + w / 2, y + h - 0.28, title, ha="center", va="top", fontsize=10.5, weight="bold")
    for i, line in enumerate(lines):
        ax.text(x + w / 2, y + h - 0.72 - i * 0.34, line, ha="center", va="top", fontsize=8.6)


def arrow(ax, x1, y1, x2, y2, label="", both=False, dx=0.1):
    ax.add_patch(
        FancyArrowPatch(
            (x1, y1),
            (x2, y2),
            arrowstyle="<|-|>" if both else "-|>",
            mutation_scale=13,
            lw=1.2,
            color="#333333",
        )
    )
    if label:
        ax.text((x1 + x2) / 2 + dx, (y1 + y2) / 2, label, fontsize=8.2, va="center", color="#222222")


def main() -> None:
    fig, ax = plt.subplots(figsize=(11, 8.6))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 8.6)
    ax.axis("off")

    box(ax, 0.6, 7.35, 4.2, 1.0, "Browsers", ["chat page /, ops console /ops (EventSource)"], BLUE)
    box(ax, 6.2, 7.35, 4.2, 1.0, "Business apps", ["any OpenAI SDK, REST + SSE"], BLUE)
    box(
        ax,
        2.7,
        5.6,
        5.6,
        1.4,
        "Load balancer",
        [
            "compose: nginx (scale profile)   k8s: Service gateway",
            "no buffering, no gzip, long reads, Last-Event-ID",
        ],
        GREY,
    )
    box(
        ax,
        2.7,
        3.4,
        5.6,
        1.7,
        "java-gateway  x N  :8080",
        [
            "auth, limits, switches, breakers, content checks, relay",
            "interchangeable: any replica resumes any stream",
            "k8s: HorizontalPodAutoscaler on CPU",
        ],
        GREEN,
        stacked=True,
    )
    box(
        ax,
        0.1,
        0.2,
        3.0,
        2.25,
        "PostgreSQL",
        ["API keys", "conversations, messages", "usage records", "switches", "audit log"],
        ORANGE,
    )
    box(
        ax,
        7.9,
        0.2,
        3.0,
        2.25,
        "Redis",
        ["rate-limit buckets", "resumable stream events", "stream leases, cancels", "switch change notices"],
        ORANGE,
    )
    box(
        ax,
        3.55,
        0.2,
        3.9,
        2.25,
        "model service  x N  :8000",
        [
            "FastAPI + transformers, one GPU each",
            "weights: /models volume (read-only)",
            "keeps nothing shared",
            "or vLLM / SGLang / TGI (OpenAI API)",
        ],
        PURPLE,
        stacked=True,
    )

    arrow(ax, 2.7, 7.35, 4.2, 7.02)
    arrow(ax, 8.3, 7.35, 6.8, 7.02)
    arrow(ax, 5.5, 5.6, 5.5, 5.1, "HTTP/1.1 keep-alive", dx=0.12)
    arrow(
        ax,
        5.5,
        3.4,
        5.5,
        2.5,
        "one DNS name, every replica\n(compose alias model-upstream,\nk8s headless Service)",
        dx=0.12,
    )
    arrow(ax, 2.7, 3.8, 1.6, 2.5, "JDBC", both=True, dx=-0.75)
    arrow(ax, 8.3, 3.8, 9.4, 2.5, "GATEWAY_REDIS_URL", both=True, dx=0.15)
    fig.savefig(OUT, dpi=110, bbox_inches="tight", facecolor="white")


if __name__ == "__main__":
    main()
