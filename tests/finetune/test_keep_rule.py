"""The keep rule: a correction is kept only if the held-out figure rises and the images it changed improved
beyond chance (exact one-sided sign test); per-image scores are the task's own metric on each image."""

import itertools

import pytest
import torch

from fastsnn.finetune.keep_rule import HeldOutScore, ScoreMeter, judge, per_image, sign_test_p
from fastsnn.tasks import Classification, Segmentation


@pytest.mark.parametrize("changed", range(0, 11))
def test_sign_test_p_is_the_share_of_coin_flip_outcomes_with_at_least_as_many_wins(changed):
    outcomes = list(itertools.product((0, 1), repeat=changed))
    for wins in range(changed + 1):
        expected = sum(sum(outcome) >= wins for outcome in outcomes) / len(outcomes)
        assert sign_test_p(wins, changed - wins) == pytest.approx(expected, rel=1e-12)


def score(values) -> HeldOutScore:
    images = torch.tensor(values, dtype=torch.float64)
    return HeldOutScore(images.nanmean().item(), images)


def test_one_or_two_changed_images_do_not_beat_noise_five_do():
    before = score([0.0] * 10 + [1.0] * 990)
    one = score([1.0] + [0.0] * 9 + [1.0] * 990)
    five = score([1.0] * 5 + [0.0] * 5 + [1.0] * 990)
    verdict = judge(before, one, significance=0.05)
    assert (verdict.wins, verdict.losses, verdict.kept) == (1, 0, False) and verdict.p_value == 0.5
    verdict = judge(before, five, significance=0.05)
    assert (verdict.wins, verdict.losses, verdict.kept) == (5, 0, True) and verdict.p_value == 1 / 32
    assert judge(before, one, significance=1.0).kept, "significance 1: any gain of the figure"


def test_a_tie_or_a_lower_figure_reverts_whatever_the_images_say():
    before = score([0.0] * 20 + [0.9] * 5)
    tie = score([0.0] * 20 + [0.9] * 5)
    lower = score([0.1] * 20 + [0.0] * 5)  # 20 images a little better, 5 much worse: the figure falls
    assert not judge(before, tie, significance=1.0).kept
    verdict = judge(before, lower, significance=1.0)
    assert (verdict.wins, verdict.losses) == (20, 5) and not verdict.kept
    undefined = score([float("nan")] * 3 + [1.0])
    assert judge(undefined, score([1.0] * 4), 1.0).wins == 0, "images undefined before count as unchanged"


def test_per_image_scores_are_the_task_metric_of_each_image_alone():
    generator = torch.Generator().manual_seed(0)
    predictions, labels = (
        torch.randint(0, 3, (40,), generator=generator),
        torch.randint(0, 3, (40,), generator=generator),
    )
    scores = per_image(Classification().meter, predictions, labels)
    assert torch.equal(scores, (predictions == labels).double())
    masks = torch.randint(0, 3, (4, 8, 8), generator=generator)
    predicted = masks.clone()
    predicted[1] = (masks[1] + 1) % 3  # every pixel wrong
    predicted[2, :4] = (masks[2, :4] + 1) % 3  # half the rows wrong
    scores = per_image(Segmentation(3).meter, predicted, masks)
    assert scores[0] == scores[3] == 1.0 and scores[1] == 0.0 and 0 < scores[2] < 1


@pytest.mark.parametrize("criterion", ["task", "agreement", "mse"])
def test_the_score_meter_figure_is_the_mean_of_equal_weight_images(criterion):
    generator = torch.Generator().manual_seed(1)
    meter = ScoreMeter(criterion, Classification(5))
    outputs, references = [], []
    for _ in range(3):
        output, reference = torch.randn(16, 5, generator=generator), torch.randn(16, 5, generator=generator)
        meter.update(output, reference, torch.randint(0, 5, (16,), generator=generator))
        outputs.append(output), references.append(reference)
    result = meter.compute((torch.cat(outputs) - torch.cat(references)).pow(2).mean().item())
    assert result.images.shape == (48,)
    assert result.figure == pytest.approx(result.images.mean().item(), rel=1e-6)
    if criterion == "agreement":
        expected = (torch.cat(outputs).argmax(1) == torch.cat(references).argmax(1)).double()
        assert torch.equal(result.images, expected) and meter.agreement == expected.mean().item()
