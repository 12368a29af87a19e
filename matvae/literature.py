"""Validity figures that other generative-materials papers report, for context only.

They were measured by other models on other data (other training sets, other sample sizes, some with
structures), so they are not comparable one-to-one with this project's numbers; the book marks them so.
Shares are of generated samples.
"""

from __future__ import annotations

REPORTED: list[dict] = [
    {
        "work": "MatGAN (Dan et al., npj Comput. Mater. 2020)",
        "data": "ICSD / OQMD compositions",
        "charge-neutral": None,
        "charge-neutral + EN-balanced": 0.845,
        "smact (smact14)": None,
    },
    {
        "work": "BLMM (Wei et al., 2023), best model",
        "data": "ICSD / MP / OQMD compositions",
        "charge-neutral": 0.897,
        "charge-neutral + EN-balanced": 0.848,
        "smact (smact14)": None,
    },
    {
        "work": "Materials Transformers (Fu et al., 2023), best model",
        "data": "ICSD / MP / OQMD compositions",
        "charge-neutral": 0.9754,
        "charge-neutral + EN-balanced": 0.9140,
        "smact (smact14)": None,
    },
    {
        "work": "CDVAE (Xie et al., ICLR 2022), composition validity",
        "data": "MP-20 structures",
        "charge-neutral": None,
        "charge-neutral + EN-balanced": None,
        "smact (smact14)": 0.8670,
    },
    {
        "work": "MP-20 data itself (CDVAE protocol)",
        "data": "MP-20 structures",
        "charge-neutral": None,
        "charge-neutral + EN-balanced": None,
        "smact (smact14)": 0.899,
    },
]
