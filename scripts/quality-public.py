#!/usr/bin/python3
"""Test-set quality of `linnet train` with default flags on public data sets
shipped by Debian (python3-sklearn's bundled ones), against scikit-learn:
regression against the least-squares optimum (LinearRegression), logistic
against LogisticRegression (raw features, and standardized ones).

    scripts/quality-public.py path/to/linnet

Each data set is split 75/25 with a fixed seed; linnet trains on the CSV of
the 75% and evaluates on the 25%, for f32, q8 and q4. Needs python3-sklearn
and python3-pandas (Debian packages); run it with /usr/bin/python3.
"""
import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pandas as pd
from sklearn import datasets
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

warnings.filterwarnings("ignore")
LINNET = sys.argv[1] if len(sys.argv) > 1 else "linnet"


def wine_binary():
    d = datasets.load_wine()
    return d.data, (d.target == 0).astype(int), d.feature_names


def wine_alcohol():
    d = datasets.load_wine()
    return d.data[:, 1:], d.data[:, 0], d.feature_names[1:]


def load(name):
    if name == "wine-class0":
        return wine_binary()
    if name == "wine-alcohol":
        return wine_alcohol()
    d = getattr(datasets, "load_" + name)()
    return d.data, d.target, d.feature_names


def linnet(*args):
    out = subprocess.run([LINNET, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def run(name, logistic, tmp):
    X, y, names = load(name)
    names = [n.replace(" ", "_") for n in names]
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    paths = {}
    for part, a, b in (("train", Xtr, ytr), ("test", Xte, yte)):
        df = pd.DataFrame(a, columns=names)
        df["target"] = b
        paths[part] = os.path.join(tmp, f"{name}-{part}.csv")
        df.to_csv(paths[part], index=False)
    rows = []
    loss = ["--loss", "logistic"] if logistic else []
    for scheme in ("f32", "q8", "q4"):
        m = os.path.join(tmp, f"{name}-{scheme}.lnm")
        linnet("train", "--data", paths["train"], "--target", "target", "--quantize", scheme, "--out", m, "--json", *loss)
        rows.append((scheme, linnet("eval", "--model", m, "--data", paths["test"], "--json")))
    if not logistic:
        best = np.sqrt(mean_squared_error(yte, LinearRegression().fit(Xtr, ytr).predict(Xte)))
        print(f"{name} ({len(y)} rows, {X.shape[1]} features): OLS test RMSE {best:.4f}")
        for scheme, ev in rows:
            limit = {"f32": 1.01, "q8": 1.02, "q4": 1.05}[scheme]
            r = ev["rmse"] / best
            print(f"  linnet {scheme:3s} RMSE {ev['rmse']:.4f} = {r:.4f}x OLS (limit {limit}) {'ok' if r <= limit else 'FAIL'}")
        return
    refs = {}
    for label, est in (("raw", LogisticRegression(max_iter=100000)),
                       ("standardized", make_pipeline(StandardScaler(), LogisticRegression(max_iter=100000)))):
        est.fit(Xtr, ytr)
        p = est.predict_proba(Xte)[:, 1]
        refs[label] = (accuracy_score(yte, p >= 0.5), log_loss(yte, p))
    print(f"{name} ({len(y)} rows, {X.shape[1]} features): scikit-learn LogisticRegression " +
          ", ".join(f"{k}: accuracy {a:.4f} log loss {l:.4f}" for k, (a, l) in refs.items()))
    for scheme, ev in rows:
        verdicts = []
        for k, (a, l) in refs.items():
            ok = ev["accuracy"] >= a - 0.01 and ev["logloss"] <= 1.1 * l
            verdicts.append(f"vs {k}: {'ok' if ok else 'FAIL'}")
        print(f"  linnet {scheme:3s} accuracy {ev['accuracy']:.4f} log loss {ev['logloss']:.4f} ({', '.join(verdicts)})")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("diabetes", "wine-alcohol"):
            run(name, False, tmp)
        for name in ("breast_cancer", "wine-class0"):
            run(name, True, tmp)


if __name__ == "__main__":
    main()
