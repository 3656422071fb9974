"""The shared feature extraction (cift.evaluation.features): outputs in order, flip averaging,
per-batch selection, the model's mode given back."""
import torch

from cift.evaluation.features import extract_features, flipped


class Columns(torch.nn.Module):
    """(B, 2, W) output: each image's column means, and the dict or tensor batch it was given."""

    def forward(self, batch):
        images = batch["images"] if isinstance(batch, dict) else batch
        assert not self.training
        cols = images.mean(dim=(1, 2))
        return torch.stack([cols, 2 * cols], dim=1)


def test_matches_a_plain_loop_with_and_without_flip():
    torch.manual_seed(0)
    batches = [torch.rand(3, 3, 4, 5, dtype=torch.float64), torch.rand(2, 3, 4, 5,
                                                                     dtype=torch.float64)]
    model = Columns().train()
    for flip in (False, True):
        want = []
        for images in batches:
            cols = images.mean(dim=(1, 2))
            if flip:
                cols = (cols + images.flip(dims=[3]).mean(dim=(1, 2))) / 2
            want.append(torch.stack([cols, 2 * cols], dim=1))
        got = extract_features(model, batches, flip=flip)
        assert got.dtype == torch.float32 and got.shape == (5, 2, 5)
        torch.testing.assert_close(got, torch.cat(want).float())
        assert model.training  # its mode given back
    first = extract_features(model, [{"images": b} for b in batches], flip=True,
                             select=lambda out: out[:, 0])
    torch.testing.assert_close(first, extract_features(model, batches, flip=True)[:, 0])


def test_no_batch_gives_an_empty_tensor_and_flipped_keeps_other_entries():
    assert extract_features(Columns(), []).numel() == 0
    batch = {"images": torch.arange(6.0).reshape(1, 1, 2, 3), "targets": [7]}
    mirrored = flipped(batch)
    assert mirrored["targets"] == [7] and mirrored["images"][0, 0, 0].tolist() == [2.0, 1.0, 0.0]
