"""Which models kdnlp accepts as classifiers for a task: label count and, where the config names them, label names."""
from __future__ import annotations

import pytest

from conftest import tiny_config
from kdnlp.tasks.glue.data import get_task
from kdnlp.core.errors import KdnlpError
from kdnlp.modeling.models import check_classifier


def classifier_config(tmp_path, labels: dict[int, str]) -> str:
    """A classifier's config.json alone (check_classifier reads no weights)."""
    config = tiny_config(num_labels=len(labels))
    config.architectures = ["BertForSequenceClassification"]
    config.id2label, config.label2id = labels, {n: i for i, n in labels.items()}
    config.save_pretrained(tmp_path)
    return str(tmp_path)


@pytest.mark.parametrize("task, labels", [
    ("rte", {0: "entailment", 1: "not_entailment"}),
    ("rte", {0: "LABEL_0", 1: "LABEL_1"}),  # HF's default names cannot be checked
    ("sst2", {0: "NEGATIVE", 1: "POSITIVE"}),  # as some Hub models spell them
    ("stsb", {0: "score"}),  # as kdnlp finetune writes a regression head
    ("stsb", {0: "LABEL_0"}),
])
def test_classifiers_with_the_tasks_or_generic_label_names_are_accepted(tmp_path, task, labels):
    check_classifier(classifier_config(tmp_path, labels), get_task(task))


def test_a_classifier_for_another_task_with_as_many_labels_is_refused(tmp_path):
    sst2 = classifier_config(tmp_path, {0: "negative", 1: "positive"})
    with pytest.raises(KdnlpError) as e:
        check_classifier(sst2, get_task("rte"))
    assert str(e.value) == (
        f"'{sst2}' is a classifier for the labels negative, positive but rte has entailment, not_entailment; "
        "use a model fine-tuned on rte (kdnlp finetune --model ENCODER --task rte)"
    )
    with pytest.raises(KdnlpError, match="start from an encoder without a classification head"):
        check_classifier(sst2, get_task("rte"), to_train=True)


def test_the_same_label_names_in_another_order_are_refused(tmp_path):
    rte = classifier_config(tmp_path, {0: "entailment", 1: "not_entailment"})
    with pytest.raises(KdnlpError, match="labels entailment, not_entailment but wnli has not_entailment, entailment"):
        check_classifier(rte, get_task("wnli"))
