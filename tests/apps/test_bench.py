"""The benchmark's report: what it states about precision and memory for each device."""

from apps.bench import gpu_peak, vocoder_precision


def test_the_vocoder_precision_follows_the_device():
    assert vocoder_precision("cuda") == vocoder_precision("cuda:1") == "float16"
    assert vocoder_precision("cpu") == "float32"


def test_the_gpu_peak_is_reported_only_for_a_cuda_run():
    assert gpu_peak({"gpu_peak_mb": None}) == ""
    assert gpu_peak({}) == ""
    assert gpu_peak({"gpu_peak_mb": 161.35}) == "; GPU peak 161 MB"
