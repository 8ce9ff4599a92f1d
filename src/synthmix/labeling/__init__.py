"""Auto-labeling with a confidence cascade: keywords -> embeddings -> NLI/LLM, each stage
deciding what it is sure of; calibration of the thresholds on gold labels. Multi-label:
`MultiLabelCascade` (label sets, per-label thresholds)."""

from synthmix.labeling.calibrate import (
    CalibrationReport,
    StageCalibration,
    calibrate,
    calibrate_on,
    choose_threshold,
    cross_validate,
    examples_needed,
)
from synthmix.labeling.cascade import Cascade, CascadeResult, LabelDecision, StageReport
from synthmix.labeling.config import (
    CascadeConfig,
    StageConfig,
    build_cascade,
    default_config,
    load_config,
    parse_config,
)
from synthmix.labeling.llm_stage import (
    LLMStage,
    logprob_distribution,
    parse_label,
    parse_label_set,
)
from synthmix.labeling.multilabel import (
    LabelSetDecision,
    MultiLabelCascade,
    MultiLabelResult,
    calibrate_multilabel,
    cross_validate_multilabel,
)
from synthmix.labeling.stages import (
    EmbeddingStage,
    KeywordStage,
    LabelingStage,
    NLIStage,
    margin_confidence,
)
from synthmix.stats.intervals import Proportion, wilson

__all__ = [
    "CalibrationReport",
    "Cascade",
    "CascadeConfig",
    "CascadeResult",
    "EmbeddingStage",
    "KeywordStage",
    "LLMStage",
    "LabelDecision",
    "LabelSetDecision",
    "LabelingStage",
    "MultiLabelCascade",
    "MultiLabelResult",
    "NLIStage",
    "Proportion",
    "StageCalibration",
    "StageConfig",
    "StageReport",
    "build_cascade",
    "calibrate",
    "calibrate_multilabel",
    "calibrate_on",
    "choose_threshold",
    "cross_validate",
    "cross_validate_multilabel",
    "default_config",
    "examples_needed",
    "load_config",
    "logprob_distribution",
    "margin_confidence",
    "parse_config",
    "parse_label",
    "parse_label_set",
    "wilson",
]
