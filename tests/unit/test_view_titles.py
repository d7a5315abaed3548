"""Each view's title says how it was made: PCA its variance, t-SNE its perplexity, and a t-SNE
whose perplexity exceeds the rarest label's clip count says what that costs."""
from dacviz_app.viewer.figures import view_title


def test_tsne_title_names_its_perplexity_and_warns_when_a_label_is_smaller():
    info = {"perplexity": 30.0}
    title, note = view_title("tsne2", info, None, smallest_label=9)
    assert title == "t-SNE 2D · perplexity 30" and note == "perplexity > rarest label's 9 clips"
    assert view_title("tsne2", {"perplexity": 5.0}, None, smallest_label=9)[0] == "t-SNE 2D · perplexity 5"
    trust = {"trustworthiness": 0.9, "continuity": 0.8, "k": 10}
    assert view_title("tsne3", info, trust, smallest_label=9)[1] == \
        "perplexity > rarest label's 9 clips · trust 0.90 · continuity 0.80 (k=10)"
    assert view_title("tsne3", info, trust, smallest_label=90)[1] == "trust 0.90 · continuity 0.80 (k=10)"


def test_pca_title_says_its_variance_and_never_the_perplexity_warning():
    title, note = view_title("pca2", {"explained_variance": 0.424}, None, smallest_label=1)
    assert title == "PCA 2D · 42.4% variance" and note == ""
