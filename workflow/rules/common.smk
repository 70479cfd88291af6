"""Config and sheet validation, cohort plans and input functions. No rules here."""

import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The package lives beside the rules; make it importable whether or not it is installed.
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from histodistill.demo.spec import DemoSpec, plan_demo  # noqa: E402
from histodistill.deploy.manifest import read_manifest  # noqa: E402
from histodistill.errors import HistodistillError  # noqa: E402
from histodistill.features.shards import FAMILY, plan_shards, shard_rule_names  # noqa: E402
from histodistill.models.catalog import (  # noqa: E402
    CATALOG,
    check_privileged,
    with_teachers,
)
from histodistill.provenance import script_code_hash  # noqa: E402
from histodistill.rna.table import RnaSource  # noqa: E402
from histodistill.sheets import read_clinical, read_samples  # noqa: E402
from histodistill.training.privileged import Privileged  # noqa: E402
from histodistill.training.task import Task  # noqa: E402
from histodistill.training.tuning import NOT_TUNABLE, TuneParams  # noqa: E402
from histodistill.wsi.status import excluded_slides, failure_summary  # noqa: E402

validate(config, schema="../schemas/config.schema.yaml")

EXTRACTOR = config["features"]["extractor"]
GENESET = config["rna"]["geneset"]
MODELS = with_teachers(config["models"])
try:
    TASK = Task.from_config(config["task"])
    PRIVILEGED = Privileged.from_config(config["privileged"])
    check_privileged(MODELS, PRIVILEGED.gene_level)
    # the schema has filled in every train: key, so its keys are the train parameters
    TuneParams.from_config(config["tune"]).check(set(config["train"]) - NOT_TUNABLE)
except HistodistillError as err:
    raise WorkflowError(str(err)) from None
CURVE = "km" if TASK.type == "survival" else "roc"  # per-model plot: Kaplan-Meier or ROC
FOLDS = list(range(config["splits"]["n_folds"]))
# histology-only models: their patch attention is drawn for the report
# attention maps of the histology-only models that learn one (not wsi_meanpool's uniform
# weights, not the controls, whose maps would repeat their base model's)
ATTENTION_MODELS = [
    m
    for m in MODELS
    if CATALOG[m].histology_only and not CATALOG[m].direct and CATALOG[m].control is None
]
# models every trained cohort bundles as a final model (results/{cohort}/final/{model}/):
# the histology-only ones, less the controls (a scored cohort may still name a control)
BUNDLED = [m for m in MODELS if CATALOG[m].histology_only and CATALOG[m].control is None]

# The param ``code`` of every step, keyed by its script's name: a hash of the script and of
# the package code it imports, so that editing a step's code re-runs that step's outputs.
CODE = {
    s.stem: script_code_hash(s)
    for s in sorted((Path(workflow.basedir) / "workflow" / "scripts").glob("[!_]*.py"))
}


def _fail(message):
    raise WorkflowError(message)


for key in {GENESET} | {c["demo"]["geneset"] for c in config["cohorts"].values() if "demo" in c}:
    if key not in config["genesets"]:
        _fail(f"gene-set collection {key!r} is not defined under genesets: in the config")
    if not Path(config["genesets"][key]).is_file():
        _fail(f"genesets.{key}: GMT file {config['genesets'][key]} does not exist")
if config["features"]["weights"] is not None and not Path(config["features"]["weights"]).is_file():
    _fail(
        f"features.weights: {config['features']['weights']} does not exist; give a local "
        "weight file or null for random weights (demo only)"
    )


def _demo_cohort(name, cfg):
    spec = DemoSpec.from_config({k: v for k, v in cfg.items() if k != "geneset"})
    base = f"results/{name}/demo"
    return {
        "demo": spec,
        "demo_gmt": config["genesets"][cfg["geneset"]],
        "samples": f"{base}/samples.tsv",
        "clinical": f"{base}/clinical.tsv",
        "rna": {"path": f"{base}/rna_counts.tsv", "kind": "counts"},
        "slides": {
            s: {"patient": p, "path": f"{base}/slides/{s}.tiff", "mpp": None}
            for s, p in plan_demo(spec).slides.items()
        },
    }


def _real_cohort(name, cfg):
    rna = RnaSource.from_config(cfg["rna"], f"cohorts.{name}.rna")
    for key in ("path", "gene_map"):
        if getattr(rna, key) is not None and not Path(getattr(rna, key)).exists():
            _fail(f"cohort {name!r}: rna.{key} file {getattr(rna, key)} does not exist")
    clinical = read_clinical(cfg["clinical"])
    validate(clinical.reset_index(), schema="../schemas/clinical.schema.yaml")
    TASK.labels(clinical, cfg["clinical"])
    if PRIVILEGED.source in ("clinical", "both"):
        PRIVILEGED.covariate_table(clinical, cfg["clinical"])
    slides = read_samples(cfg["samples"], list(clinical.index))
    return {
        "demo": None,
        "samples": cfg["samples"],
        "clinical": cfg["clinical"],
        "rna": cfg["rna"],
        "slides": {
            s.slide_id: {"patient": s.patient, "path": str(s.path), "mpp": s.mpp}
            for s in slides.values()
        },
    }


def _scored_cohort(name, cfg):
    """A cohort scored by final models: slides (and optionally outcomes), no RNA."""
    if "demo" in cfg:
        cohort = {**_demo_cohort(name, cfg["demo"]), "rna": None}
    else:
        clinical = cfg.get("clinical")
        if clinical is not None:
            table = read_clinical(clinical)
            validate(table.reset_index(), schema="../schemas/clinical.schema.yaml")
        slides = read_samples(cfg["samples"])
        cohort = {
            "demo": None,
            "samples": cfg["samples"],
            "clinical": clinical,
            "rna": None,
            "slides": {
                s.slide_id: {"patient": s.patient, "path": str(s.path), "mpp": s.mpp}
                for s in slides.values()
            },
        }
    return {**cohort, "bundles": _bundles_of(name, cfg["score_with"])}


def _bundles_of(name, score_with):
    """name -> bundle folder of every final model that scores cohort ``name``."""
    bundles = {}
    source = score_with.get("cohort")
    if source is not None:
        if source not in config["cohorts"] or "score_with" in config["cohorts"][source]:
            _fail(
                f"cohort {name!r}: score_with.cohort {source!r} is not a trained cohort of "
                "this config"
            )
        for m in score_with.get("models") or BUNDLED:
            if m not in MODELS or not CATALOG[m].histology_only:
                _fail(
                    f"cohort {name!r}: score_with.models: {m!r} is not a histology-only "
                    f"model of models: (those are {[x for x in MODELS if CATALOG[x].histology_only]})"
                )
            bundles[m] = f"results/{source}/final/{m}"
    elif score_with.get("models"):
        _fail(f"cohort {name!r}: score_with.models needs score_with.cohort")
    tiling = config["wsi"]["tiling"]
    for key, folder in (score_with.get("bundles") or {}).items():
        if key in bundles:
            _fail(
                f"cohort {name!r}: score_with.bundles: {key!r} is also a model of "
                f"score_with.cohort; give the bundle another name"
            )
        try:
            manifest = read_manifest(folder)
        except HistodistillError as exc:
            _fail(f"cohort {name!r}: score_with.bundles.{key}: {exc}")
        found = (
            manifest["extractor"]["name"],
            manifest["tiling"]["patch_um"],
            manifest["tiling"]["patch_px"],
        )
        wanted = (EXTRACTOR, tiling["patch_um"], tiling["patch_px"])
        if found[0] != wanted[0] or abs(found[1] - wanted[1]) > 1e-6 or found[2] != wanted[2]:
            _fail(
                f"cohort {name!r}: bundle {folder} was trained on {found[0]} features of "
                f"{found[1]:g} um / {found[2]} px tiles; this config extracts {wanted[0]} "
                f"features of {wanted[1]:g} um / {wanted[2]} px. Set features.extractor, "
                "features.weights and wsi.tiling to the bundle's (or score in a project "
                "configured like the training one)"
            )
        if manifest["task"]["type"] != TASK.type:
            _fail(
                f"cohort {name!r}: bundle {folder} is a {manifest['task']['type']} model; "
                f"this config's task is {TASK.type} (set task: to the bundle's)"
            )
        bundles[key] = folder
    if not bundles:
        _fail(f"cohort {name!r}: score_with names no model (give cohort: or bundles:)")
    return bundles


COHORTS = {}
for _name, _cfg in config["cohorts"].items():
    try:
        if "score_with" in _cfg:
            COHORTS[_name] = _scored_cohort(_name, _cfg)
        else:
            COHORTS[_name] = (
                _demo_cohort(_name, _cfg["demo"]) if "demo" in _cfg else _real_cohort(_name, _cfg)
            )
    except (HistodistillError, ValueError) as exc:
        _fail(f"cohort {_name!r}: {exc}")

DEMO_COHORTS = [c for c, v in COHORTS.items() if v["demo"] is not None]
# trained cohorts (RNA, outcomes, cross-validation) and cohorts scored by final models
SCORED = {c: v["bundles"] for c, v in COHORTS.items() if "bundles" in v}
TRAINED = [c for c in COHORTS if c not in SCORED]
SCORED_NAMES = sorted({n for b in SCORED.values() for n in b})

# Feature-extraction shards: (cohort, k) -> its slides (consecutive sheet rows) and rule name.
SHARDS = {
    (c, k): slides
    for c in COHORTS
    for k, slides in enumerate(
        plan_shards(list(COHORTS[c]["slides"]), config["features"]["slides_per_job"])
    )
}
SHARD_RULES = shard_rule_names(SHARDS)
# The shards' params: the feature settings, less the shard size and the number of reader
# processes (a new value of either must not re-run slides whose features do not depend on it).
FEATURE_PARAMS = {
    k: v for k, v in config["features"].items() if k not in ("slides_per_job", "num_workers")
}


def _alternatives(names):
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


wildcard_constraints:
    cohort=_alternatives(COHORTS),
    slide=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    model=_alternatives(MODELS),
    fold=r"\d+",
    name=_alternatives(SCORED_NAMES),
    geneset=r"[A-Za-z0-9_-]+",


# ---- input functions -------------------------------------------------------------------


def cohort_file(key):
    """Input function: a cohort-level input file (sheet or count table)."""
    return lambda wc: COHORTS[wc.cohort][key]


def rna_inputs(wc):
    """The cohort's RNA table, and its gene map when it has one."""
    rna = COHORTS[wc.cohort]["rna"]
    return {"table": rna["path"], **({"gene_map": rna["gene_map"]} if rna.get("gene_map") else {})}


def pathway_inputs(wc):
    """Inputs of score_pathways; GSVA is fitted per fold, so it also needs the folds."""
    inputs = {
        "normalised": f"results/{wc.cohort}/rna/normalised.parquet",
        "gene_sets": config["genesets"][wc.geneset],
        "clinical": COHORTS[wc.cohort]["clinical"],
    }
    if config["rna"]["score_method"] == "gsva":
        inputs["folds"] = f"results/{wc.cohort}/splits/folds.tsv"
    return inputs


def rna_source(wc):
    """The cohort's rna: block (a param: changing how the table is read re-runs the step)."""
    return dict(COHORTS[wc.cohort]["rna"])


def slide_path(wc):
    return COHORTS[wc.cohort]["slides"][wc.slide]["path"]


def slide_mpp(wc):
    return COHORTS[wc.cohort]["slides"][wc.slide]["mpp"]


def slide_ids(cohort):
    return sorted(COHORTS[cohort]["slides"])


def demo_spec(wc):
    return COHORTS[wc.cohort]["demo"]


def feature_files(cohort):
    return [f"results/{cohort}/features/{EXTRACTOR}/{s}.h5" for s in slide_ids(cohort)]


def print_excluded_slides():
    """At the end of a run (onsuccess/onerror): the slides excluded under
    wsi.on_slide_error: exclude, with their reasons, on the terminal."""
    if config["wsi"]["on_slide_error"] != "exclude":
        return
    files = {
        c: [
            p
            for s in slide_ids(c)
            for p in (f"results/{c}/patches/{s}.h5", f"results/{c}/features/{EXTRACTOR}/{s}.h5")
        ]
        for c in COHORTS
    }
    try:
        summary = failure_summary(excluded_slides(files))
    except ImportError as exc:  # h5py absent from Snakemake's own environment (--use-conda)
        summary = f"histodistill: excluded slides not listed here ({exc}); see the reports"
    if summary:
        print(summary, file=sys.stderr)


def feature_index(cohort):
    """The cohort's feature index: what cohort-level steps depend on instead of every h5."""
    return f"results/{cohort}/features/{EXTRACTOR}/index.tsv"


def model_dir(cohort, model, fold):
    return f"results/{cohort}/models/{model}/fold{fold}"


def privileged_table(cohort):
    """The RNA table models learn from: pathway scores, or per-fold gene values."""
    table = "genes" if PRIVILEGED.gene_level else "pathways"
    return f"results/{cohort}/rna/{table}_{GENESET}.parquet"


def train_inputs(wc):
    """A model's inputs: WSI features only for models that read them, the RNA table (pathway
    scores, or per-fold gene values under privileged.source: genes) only for models that see
    RNA (so an RNA change does not re-train wsi_abmil), the teacher's checkpoint of the same
    fold for students."""
    info = CATALOG[wc.model]
    inputs = {
        "folds": f"results/{wc.cohort}/splits/folds.tsv",
        "clinical": COHORTS[wc.cohort]["clinical"],
        "samples": COHORTS[wc.cohort]["samples"],
    }
    if info.uses_rna:
        inputs["pathways"] = privileged_table(wc.cohort)
    if info.needs_wsi:
        inputs["features"] = feature_index(wc.cohort)
    if info.teacher:
        tdir = model_dir(wc.cohort, info.teacher, wc.fold)
        inputs["teacher"] = [f"{tdir}/model.pt", f"{tdir}/meta.json"]
    return inputs


def predictions(cohort):
    return {m: [f"{model_dir(cohort, m, k)}/predictions.tsv" for k in FOLDS] for m in MODELS}


def report_inputs(wc):
    c = wc.cohort
    return {
        "metrics": f"results/{c}/metrics.tsv",
        "cindex": f"results/{c}/plots/cindex.png",
        "km": [f"results/{c}/plots/{CURVE}_{m}.png" for m in MODELS],
        "meta": [f"{model_dir(c, m, k)}/meta.json" for m in MODELS for k in FOLDS],
        "rna_qc": f"results/{c}/rna/qc.png",
        "rna_summary": f"results/{c}/rna/summary.json",
        "pathway_heatmap": f"results/{c}/rna/pathways_{GENESET}_heatmap.png",
        "coverage": f"results/{c}/rna/pathways_{GENESET}_coverage.tsv",
        "pathways": f"results/{c}/rna/pathways_{GENESET}.parquet",
        "samples": COHORTS[c]["samples"],
        "clinical": COHORTS[c]["clinical"],
        "features": feature_index(c),
        "tissue_qc": [f"results/{c}/qc/{s}_tiles.png" for s in slide_ids(c)[:6]],
        "attention": [f"results/{c}/attention/{m}" for m in ATTENTION_MODELS],
        "mope": (
            [f"results/{c}/plots/mope_pathways.png", f"results/{c}/mope_pathways.tsv"]
            if "mope" in MODELS
            else []
        ),
        "ghanet": (
            [f"results/{c}/plots/ghanet_groups.png", f"results/{c}/ghanet_groups.tsv"]
            if "ghanet" in MODELS
            else []
        ),
    }


def bundle_dir(cohort, name):
    return SCORED[cohort][name]


def scored_outputs(cohort):
    """Predictions, attention folders and, with outcomes, the validation of a scored cohort."""
    names = list(SCORED[cohort])
    out = {
        "predictions": [f"results/{cohort}/predictions/{n}.tsv" for n in names],
        "manifests": [f"{bundle_dir(cohort, n)}/manifest.json" for n in names],
        "attention": [f"results/{cohort}/attention/{n}" for n in names],
    }
    if COHORTS[cohort]["clinical"] is not None:
        out |= {
            "metrics": f"results/{cohort}/external/metrics.tsv",
            "cindex": f"results/{cohort}/external/{'auc' if CURVE == 'roc' else 'cindex'}.png",
            "curves": f"results/{cohort}/external/curves",
            "clinical": COHORTS[cohort]["clinical"],
        }
    return out


def external_report_inputs(wc):
    c = wc.cohort
    out = scored_outputs(c)
    return {**out, "samples": COHORTS[c]["samples"], "features": feature_index(c)}


def all_targets():
    """Every product of every cohort, not only the reports: Snakemake re-creates a missing
    intermediate file only when something requests it, so listing them all makes "delete one
    slide's features" re-run exactly that slide and what depends on it (tested)."""
    targets = []
    for c in COHORTS:
        for s in slide_ids(c):
            targets += [
                f"results/{c}/tissue/{s}.geojson",
                f"results/{c}/qc/{s}_tissue.png",
                f"results/{c}/qc/{s}_tiles.png",
                f"results/{c}/patches/{s}.h5",
            ]
        targets += feature_files(c) + [feature_index(c), f"results/{c}/report.html"]
        if c in SCORED:
            targets += [
                f for v in scored_outputs(c).values() for f in (v if isinstance(v, list) else [v])
            ]
            continue
        targets += [f"results/{c}/metrics.tsv"]
        targets += [f"results/{c}/attention/{m}" for m in ATTENTION_MODELS]
        targets += [f"results/{c}/final/{m}/manifest.json" for m in BUNDLED]
    return targets


def demo_config(wc):
    """The demo spec as a plain dict (a param: changing it re-runs the generator)."""
    from dataclasses import asdict

    spec = asdict(COHORTS[wc.cohort]["demo"])
    spec.pop("programmes")
    return spec


def scaled_mem(base_mb):
    """mem_mb that grows with each retry, so an out-of-memory job succeeds on re-submission."""
    return lambda wc, attempt: base_mb * attempt


# What a profile sets for the rule family extract_features (set-resources / set-threads)
# applies to every shard rule; Snakemake itself matches those settings by exact rule name.
# Snakemake has parsed them already: each is passed on as written (an expression stays one).
# The feature shards are generated rules (extract_features_{cohort}_{k}), but a profile's
# set-threads / set-resources name the family, extract_features. Snakemake has no public API
# that gives a rule the settings made for another name, so the shards read them from
# workflow.resource_settings (overwrite_threads, overwrite_resources: dicts by rule name, values
# possibly wrapped with their text in .raw). Tested with Snakemake 9.27 (pinned in
# pyproject.toml) by tests/workflow/test_slurm.py and the shard tests; check it on an upgrade.
def _as_written(value):
    return getattr(value, "raw", value)


SHARD_THREADS = _as_written(workflow.resource_settings.overwrite_threads.get(FAMILY, 1))


def shard_resources(n_slides):
    """Resources of a shard of ``n_slides``: memory does not grow with the shard (tiles
    stream); the time limit does (GPU-sized: 15 min + 6 min per slide, unless the profile
    sets runtime for extract_features)."""
    profile = workflow.resource_settings.overwrite_resources.get(FAMILY, {})
    defaults = dict(mem_mb=scaled_mem(4000), runtime=15 + 6 * n_slides, gpu=0)
    return {**defaults, **{k: _as_written(v) for k, v in profile.items()}}


def input_scaled_mem(base_mb, per_input_mb):
    """Like scaled_mem, plus ``per_input_mb`` MB per MB of input (cohort-sized tables)."""
    return lambda wc, input, attempt: int(base_mb + per_input_mb * input.size_mb) * attempt


def cohort_config(wc):
    """The config as one cohort sees it (other cohorts left out, so that editing one cohort
    does not re-run another's report)."""
    view = {k: v for k, v in config.items() if k != "cohorts"}
    return {"cohorts": {wc.cohort: config["cohorts"][wc.cohort]}, **view}
