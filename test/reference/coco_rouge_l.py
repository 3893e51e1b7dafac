"""ROUGE-L as coco-caption computes it (pycocoevalcap/rouge/rouge.py: my_lcs and calc_score, one
reference, beta 1.2): the independent implementation PAL Studio's ROUGE-L is checked against, by
the metrics test and by `npm run bench`."""


def my_lcs(string, sub):
    if len(string) < len(sub):
        sub, string = string, sub
    lengths = [[0 for i in range(0, len(sub) + 1)] for j in range(0, len(string) + 1)]
    for j in range(1, len(sub) + 1):
        for i in range(1, len(string) + 1):
            if string[i - 1] == sub[j - 1]:
                lengths[i][j] = lengths[i - 1][j - 1] + 1
            else:
                lengths[i][j] = max(lengths[i - 1][j], lengths[i][j - 1])
    return lengths[len(string)][len(sub)]


def rouge_l(candidate, reference, beta=1.2):
    """F-measure of the longest common subsequence of two token lists."""
    if not candidate or not reference:
        return 0.0
    lcs = my_lcs(reference, candidate)
    p, rec = lcs / float(len(candidate)), lcs / float(len(reference))
    return ((1 + beta ** 2) * p * rec) / float(rec + beta ** 2 * p) if p != 0 and rec != 0 else 0.0
