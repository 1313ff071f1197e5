import pytest

from factory.core.errors import FactoryError
from factory.data.taxonomy import NONE_ID, label_schema, load_taxonomy, parse_taxonomy, shared_leading_tokens


def test_default_taxonomy_has_nine_categories_and_exclusive_none(taxonomy):
    assert len(taxonomy.categories) == 9
    assert taxonomy.none.id == NONE_ID
    assert taxonomy.all_ids[-1] == NONE_ID
    assert all(c.definition and c.examples for c in taxonomy.categories)


def test_schemas_are_strict_and_bounded(taxonomy):
    schema = label_schema(taxonomy)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["evidence"]["maxLength"] > 0
    positives, none_only = schema["properties"]["labels"]["anyOf"]
    assert positives["maxItems"] <= 4 and NONE_ID not in positives["items"]["enum"]
    assert none_only["items"]["enum"] == [NONE_ID] and none_only["maxItems"] == 1


def test_normalise_labels_orders_dedups_and_keeps_none_exclusive(taxonomy):
    assert taxonomy.normalise_labels(["treatment_and_care", "cognitive_impairment", "treatment_and_care"]) == [
        "cognitive_impairment",
        "treatment_and_care",
    ]
    assert taxonomy.normalise_labels(["none", "dementia_diagnosis"]) == ["dementia_diagnosis"]
    assert taxonomy.normalise_labels([]) == ["none"]
    with pytest.raises(FactoryError, match="not in the taxonomy: bogus"):
        taxonomy.normalise_labels(["bogus"])


def _minimal(**overrides):
    data = {
        "categories": [{"id": "memory", "name": "Memory", "definition": "forgets things"}],
        "none": {"id": "none", "definition": "nothing"},
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "top level must be a JSON object"),
        (_minimal(categories=[]), "'categories' must be a non-empty list"),
        (_minimal(categories=[{"id": "a", "definition": "x"}, {"id": "a", "definition": "y"}]), "duplicate category ids: a"),
        (_minimal(categories=[{"id": "memory", "definition": "  "}]), "definition must be a non-empty string"),
        (_minimal(categories=[{"id": "Bad Id", "definition": "x"}]), "must be lower_snake_case"),
        (_minimal(generation_attributes={"speaker": []}), "non-empty lists of strings"),
    ],
)
def test_invalid_taxonomies_are_refused_with_a_clear_message(data, message):
    with pytest.raises(FactoryError, match=message):
        parse_taxonomy(data)


def test_load_taxonomy_reports_missing_and_malformed_files(tmp_path):
    with pytest.raises(FactoryError, match="taxonomy file not found"):
        load_taxonomy(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(FactoryError, match="not valid JSON"):
        load_taxonomy(bad)


def test_choice_strings_are_what_the_model_writes_and_map_back_to_ids(taxonomy):
    impairment = taxonomy.get("cognitive_impairment")
    assert impairment.choice == "impaired_cognition"
    assert taxonomy.get("cognitive_assessment").choice == "cognitive_assessment"  # default: the id
    enum = label_schema(taxonomy)["properties"]["labels"]["anyOf"][0]["items"]["enum"]
    assert enum == taxonomy.choices and "impaired_cognition" in enum and "cognitive_impairment" not in enum
    assert taxonomy.ids_from_choices(["impaired_cognition", "none"]) == ["cognitive_impairment", "none"]


def test_choice_strings_must_be_snake_case_and_unique():
    base = {"none": {"id": "none", "definition": "not related"}}
    with pytest.raises(FactoryError, match="choice 'Bad Choice' must be lower_snake_case"):
        parse_taxonomy({**base, "categories": [{"id": "a", "definition": "x", "choice": "Bad Choice"}]})
    with pytest.raises(FactoryError, match="choice strings must be unique: b"):
        parse_taxonomy({**base, "categories": [{"id": "a", "definition": "x", "choice": "b"},
                                               {"id": "b", "definition": "y"}]})


def test_default_choices_start_with_distinct_tokens_for_the_embedded_model(taxonomy):
    from transformers import AutoTokenizer

    from factory.engines.model_ref import prepare_embedded_model

    tokenize = AutoTokenizer.from_pretrained(str(prepare_embedded_model())).tokenize
    assert shared_leading_tokens(taxonomy.choices + ["none"], tokenize) == {}
    # the ids themselves would not do: two of them begin with the same token
    assert shared_leading_tokens(taxonomy.all_ids, tokenize) == {"cognitive": ["cognitive_impairment", "cognitive_assessment"]}
