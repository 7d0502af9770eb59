"""Writes chexbert_f1_sklearn.json: f1chexbert's scores computed by scikit-learn itself, the reference the CheXbert-F1
tests compare analysis/stats/chexbert_f1.py against (scikit-learn is not a dependency of the platform).

Run (scikit-learn installed somewhere outside the venv, e.g. ``pip install --target /tmp/sk scikit-learn``):
    PYTHONPATH=/tmp/sk python tests/analysis/results/make_chexbert_f1_reference.py

The computation is f1chexbert 0.0.2's ``F1CheXbert.forward`` after ``get_label(mode="rrg")``, line for line:
accuracy_score and classification_report(output_dict=True) on all 14 and on the 5 conditions."""
import json
from pathlib import Path

import numpy as np
import sklearn
from sklearn.metrics import accuracy_score, classification_report

NAMES = ["Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema", "Consolidation",
         "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
         "Support Devices", "No Finding"]
NAMES_5 = ["Cardiomegaly", "Edema", "Consolidation", "Atelectasis", "Pleural Effusion"]
IDX_5 = np.where(np.isin(NAMES, NAMES_5))[0]


def rrg(row):
    return [1 if v in (1, -1) else 0 for v in row]  # get_label(mode="rrg"): positive/uncertain -> 1, else 0


def main():
    rng = np.random.default_rng(20)
    choices = np.array([1, 0, -1, None], dtype=object)
    cases = []
    for n in (9, 25):
        refs = [[v for v in rng.choice(choices, size=14, p=[0.3, 0.3, 0.1, 0.3])] for _ in range(n)]
        hyps = [[v for v in rng.choice(choices, size=14, p=[0.3, 0.3, 0.1, 0.3])] for _ in range(n)]
        hyps[0] = list(refs[0])  # one report identical to its reference
        for r in refs:  # a condition nobody has (zero support), as in small trials
            r[10] = None
        r14, h14 = [rrg(r) for r in refs], [rrg(h) for h in hyps]
        r5, h5 = [np.array(r)[IDX_5] for r in r14], [np.array(h)[IDX_5] for h in h14]
        cr = classification_report(r14, h14, target_names=NAMES, output_dict=True)
        cr5 = classification_report(r5, h5, target_names=NAMES_5, output_dict=True)
        cases.append({"references": [[None if v is None else int(v) for v in r] for r in refs],
                      "hypotheses": [[None if v is None else int(v) for v in h] for h in hyps],
                      "accuracy_5": accuracy_score(r5, h5), "report_14": cr, "report_5": cr5})
    out = {"source": "scikit-learn " + sklearn.__version__ + " classification_report / accuracy_score, as in "
                     "f1chexbert 0.0.2 F1CheXbert.forward", "cases": cases}
    Path(__file__).with_name("chexbert_f1_sklearn.json").write_text(json.dumps(out, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
