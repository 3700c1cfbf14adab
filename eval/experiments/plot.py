#!/usr/bin/python3
"""plot.py — the plots of docs/experiments.md from eval/experiments/results/*.json
(a docs-only tool: Debian's python3-matplotlib), and the markdown tables with --tables.

    /usr/bin/python3 eval/experiments/plot.py RESULTS_DIR IMG_DIR [--tables]

Writes IMG_DIR/exp-02-code-size-plot.png, exp-02-noise-plot.png, exp-04-sparse-plot.png and
exp-09-roc.png for the results that exist; with --tables, prints every table of
docs/experiments.md (numbers as measured, nothing else) to stdout.
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(res, name):
    p = os.path.join(res, name + ".json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def sig_key(k):
    return float(k)


def plot_code_size(r, img):
    code = r.get("code", {})
    if not code:
        return
    hs = sorted(code, key=int)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([int(h) for h in hs], [code[h]["psnr"] for h in hs], "o-", label="noisy input (sigma 0.5)")
    cc = r.get("code-clean", {})
    if cc:
        hc = sorted(cc, key=int)
        ax.plot([int(h) for h in hc], [cc[h]["psnr"] for h in hc], "s--", label="clean input")
    ax.axvline(784, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_xticks([int(h) for h in hs])
    ax.set_xticklabels(hs)
    ax.set_xlabel("code size (units); dotted: input size 784")
    ax.set_ylabel("test PSNR (dB)")
    ax.set_title("MNIST DAE 784-h-784, trained at sigma 0.5")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(img, "exp-02-code-size-plot.png"), dpi=100)
    plt.close(fig)


def plot_noise(r, img):
    nz = r.get("noise", {})
    if not nz:
        return
    ss = sorted(nz, key=sig_key)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([float(s) for s in ss], [nz[s]["psnr"] for s in ss], "o-", label="trained at that sigma")
    fx = r.get("noise-fixed", {})
    if fx:
        fs = sorted(fx, key=sig_key)
        ax.plot([float(s) for s in fs], [fx[s]["psnr"] for s in fs], "s--", label="trained at sigma 0.5")
    ax.plot([float(s) for s in ss], [nz[s]["psnr_input"] for s in ss], "x:", color="grey", label="noisy input")
    ax.set_xlabel("Gaussian noise sigma (test)")
    ax.set_ylabel("test PSNR (dB)")
    ax.set_title("MNIST DAE 784-64-784")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(img, "exp-02-noise-plot.png"), dpi=100)
    plt.close(fig)


LAMBDAS = ["0", "1e-5", "3e-5", "1e-4", "3e-4", "1e-3"]


def plot_sparse(r, img):
    codes, psnr = r.get("codes", {}), r.get("psnr", {})
    lams = [l for l in LAMBDAS if l in codes and l in psnr]
    if not lams:
        return
    x = range(len(lams))
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(x, [100 * codes[l]["frac_near_zero"] for l in lams], "o-", color="C0")
    ax.set_ylabel("code units |z| < 0.01 (%)", color="C0")
    ax.set_ylim(0, 100)
    ax2 = ax.twinx()
    ax2.plot(x, [psnr[l]["psnr"] for l in lams], "s--", color="C1")
    ax2.set_ylabel("clean test PSNR (dB)", color="C1")
    ax.set_xticks(list(x))
    ax.set_xticklabels(lams)
    ax.set_xlabel("L1 weight lambda")
    ax.set_title("MNIST sparse AE 784-256-784 (ReLU code)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(img, "exp-04-sparse-plot.png"), dpi=100)
    plt.close(fig)


def plot_roc(r, img):
    m = r.get("mnist", {})
    cls = m.get("classes", [])
    if not cls:
        return
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for c in cls:
        ax.plot(c["roc"]["fpr"], c["roc"]["tpr"], lw=1.2, label="%d: %.3f" % (c["class"], c["auroc"]))
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=0.8)
    ax.set_xlabel("false positive rate (normal flagged)")
    ax.set_ylabel("true positive rate (anomaly flagged)")
    ax.set_title("one-class MNIST, score %s" % cls[0]["score"], fontsize=9)
    ax.legend(fontsize=7, title="class: AUROC", title_fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(img, "exp-09-roc.png"), dpi=100)
    plt.close(fig)


def f2(x):
    return "" if x is None else "%.2f" % x


def f3(x):
    return "" if x is None else "%.3f" % x


def tables(res):
    out = []
    t = lambda *rows: out.extend(rows)  # noqa: E731
    r = load(res, "01-tanh-ae")
    if r:
        t("### 1", "", "| model | PSNR clean | SSIM clean | PSNR masked (p=0.5) | SSIM masked |", "|---|---|---|---|---|")
        e = r["ae"]["denoise-mask50"]
        t("| masked input itself | 100 (identity) | 1 | %s | %s |" % (f2(e["psnr_input"]), f3(e["ssim_input"])))
        for m, name in [("ae", "plain AE"), ("dae-mask", "masking DAE")]:
            c, k = r[m]["clean"], r[m]["denoise-mask50"]
            t("| %s | %s | %s | %s | %s |" % (name, f2(c["psnr"]), f3(c["ssim"]), f2(k["psnr"]), f3(k["ssim"])))
        t("")
    r = load(res, "02-code-size")
    if r:
        t("### 2 code size", "", "| code size | PSNR (sigma 0.5 input) | SSIM | PSNR (clean input) |", "|---|---|---|---|")
        for h in sorted(r.get("code", {}), key=int):
            c = r["code"][h]
            cc = r.get("code-clean", {}).get(h, {})
            t("| %s | %s | %s | %s |" % (h, f2(c["psnr"]), f3(c["ssim"]), f2(cc.get("psnr"))))
        t("", "### 2 noise", "", "| test sigma | input PSNR | trained at that sigma | trained at 0.5 |", "|---|---|---|---|")
        for s in sorted(r.get("noise", {}), key=sig_key):
            n = r["noise"][s]
            fx = r.get("noise-fixed", {}).get(s, {})
            t("| %s | %s | %s | %s |" % (s, f2(n["psnr_input"]), f2(n["psnr"]), f2(fx.get("psnr"))))
        t("")
    r = load(res, "03-dae-vs-cae")
    if r:
        t("### 3", "", "| model | PSNR clean | PSNR g20 | PSNR g50 | mean ‖J‖_F | s/epoch (median) |", "|---|---|---|---|---|---|")
        for m in ["ae", "dae", "cae", "cae-strong"]:
            if m not in r:
                continue
            x = r[m]
            t("| %s | %s | %s | %s | %s | %s |" % (m, f2(x["clean"]["psnr"]), f2(x["denoise-g20"]["psnr"]),
                                                  f2(x["denoise-g50"]["psnr"]), f3(x["jacobian"]["fro"]),
                                                  r.get("epoch_s", {}).get(m)))
        t("")
    r = load(res, "04-sparse")
    if r:
        t("### 4", "", "| lambda | PSNR clean | units with abs(z) < 0.01 | exactly 0 | active units / image | dead units |", "|---|---|---|---|---|---|")
        for l in LAMBDAS:
            if l not in r.get("codes", {}):
                continue
            c = r["codes"][l]
            t("| %s | %s | %.1f%% | %.1f%% | %.1f | %d |" % (l, f2(r["psnr"][l]["psnr"]), 100 * c["frac_near_zero"],
                                                         100 * c["frac_zero"], c["active_per_image"], c["dead_units"]))
        t("")
    r = load(res, "05-corruptions")
    if r:
        t("### 5", "", "| corruption | PSNR corrupted | PSNR reconstructed | SSIM corrupted | SSIM reconstructed |", "|---|---|---|---|---|")
        for c in ["mask50", "mask90", "blur", "block10", "block16", "g20", "g50"]:
            if c in r:
                x = r[c]
                t("| %s | %s | %s | %s | %s |" % (c, f2(x["psnr_input"]), f2(x["psnr"]), f3(x["ssim_input"]), f3(x["ssim"])))
        t("")
    r = load(res, "06-superres")
    if r:
        t("### 6", "", "| data | method | PSNR | PSNR agg | SSIM |", "|---|---|---|---|---|")
        for ds in ["mnist", "fmnist"]:
            for m, x in r.get(ds, {}).items():
                t("| %s | %s | %s | %s | %s |" % (ds, m, f2(x["psnr"]), f2(x["psnr_agg"]), f3(x["ssim"])))
        t("")
    r = load(res, "07-noise2noise")
    if r:
        t("### 7", "", "| target | PSNR g50 | SSIM |", "|---|---|---|")
        for m in ["clean-target", "noisy-target"]:
            if m in r:
                t("| %s | %s | %s |" % (m, f2(r[m]["psnr"]), f3(r[m]["ssim"])))
        t("")
    r = load(res, "08-interpolation")
    if r:
        t("### 8", "", "| pair (test index) | grey pixels a / b | midpoint grey: latent | midpoint grey: cross-fade |", "|---|---|---|---|")
        for k, x in r.items():
            if k == "time":
                continue
            t("| %s | %.1f%% / %.1f%% | %.1f%% | %.1f%% |" % (k, 100 * x["grey_a"], 100 * x["grey_b"],
                                                          100 * x["mid_grey_latent"], 100 * x["mid_grey_pixel"]))
        t("")
    r = load(res, "09-anomaly")
    if r:
        m = r["mnist"]
        t("### 9", "", "| class | AUROC |", "|---|---|")
        for c in m["classes"]:
            t("| %d | %.4f |" % (c["class"], c["auroc"]))
        t("| **mean** | **%.4f** |" % m["mean_auroc"], "")
    t("### times", "", "| experiment | wall s | CPU s |", "|---|---|---|")
    for n in sorted(os.listdir(res)):
        if n.endswith(".json"):
            x = load(res, n[:-5]).get("time")
            if x:
                t("| %s | %s | %s |" % (n[:-5], x["wall_s"], x["cpu_s"]))
    print("\n".join(out))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    res, img = sys.argv[1], sys.argv[2]
    r = load(res, "02-code-size")
    if r:
        plot_code_size(r, img)
        plot_noise(r, img)
    r = load(res, "04-sparse")
    if r:
        plot_sparse(r, img)
    r = load(res, "09-anomaly")
    if r:
        plot_roc(r, img)
    if "--tables" in sys.argv[3:]:
        tables(res)


if __name__ == "__main__":
    main()
