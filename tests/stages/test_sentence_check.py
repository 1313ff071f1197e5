"""The bronze sentence sanity check: real note sentences pass, generation junk is rejected with a reason."""

import json
from pathlib import Path

import pytest

from factory.data.taxonomy import load_taxonomy
from factory.stages.sentence_check import (
    REASON_CODES,
    REASONS,
    sentence_problem,
    sentence_problems,
    strip_item_marker,
)

ROOT = Path(__file__).resolve().parents[2]
TAXONOMY = load_taxonomy()
DEFINITIONS = [c.definition for c in TAXONOMY.categories] + [TAXONOMY.none.definition]

GOOD = [
    # with numbers, units and abbreviations
    "MoCA today was 19/30.",
    "BP 132/84 on lisinopril.",
    "She was started on donepezil 5 mg nightly.",
    "Per daughter, he gets lost driving to familiar places.",
    "MMSE 24/30 with loss of points on recall and orientation.",
    "Vitals: T 98.6, HR 88, BP 128/76, RR 18, SpO2 97% on room air.",
    "BP 138/88, HR 64.",
    "MoCA 16/30.",
    "Hemoglobin A1c 8.9% today, up from 7.4% three months ago.",
    "Sodium 138, potassium 4.1, creatinine 1.2.",
    "Memantine was increased to 10 mg b.i.d. last month.",
    "Weight down 12 lb since the last visit.",
    "Follow up in 3-4 weeks or sooner PRN.",
    "CT head without contrast showed no acute intracranial process.",
    "TSH 2.1 and B12 450 were within normal limits.",
    "She takes metformin 1000 mg p.o. b.i.d. with meals.",
    "Amyloid PET was positive in the frontal and parietal cortex.",
    # section-prefixed lines with a real clause
    "Assessment: probable Alzheimer's disease, moderate stage.",
    "Dx: mild cognitive impairment.",
    "Plan: continue current medications and recheck labs in six months.",
    "Allergies: penicillin (rash).",
    # verbless exam and assessment fragments
    "Lungs clear to auscultation bilaterally.",
    "Abdomen soft, nontender, nondistended.",
    "Daytime sleepiness with reversal of the sleep-wake cycle.",
    "No focal neurological deficits on exam.",
    "Lungs clear, heart regular, abdomen soft, extremities warm, no edema.",
    "Community-acquired pneumonia.",
    "Severe dementia.",
    # speakers, negation, family reports
    "His wife reports he has been repeating the same stories.",
    "Daughter is worried that she left the stove on twice this week.",
    "Denies memory problems.",
    "Patient denies memory loss or confusion.",
    "Denies fever, chills, cough, dyspnea, nausea.",
    "I will see her back in three months with repeat testing.",
    "I discussed the results with the patient and his son.",
    "He needs reminders to take his medications and help with bathing.",
    "Provide assistance with bathing and dressing each morning.",
    "Unable to write a sentence on the MMSE.",
    "Return to the emergency department for chest pain or shortness of breath.",
    "Nursing note: resident was found wandering in the hallway at night.",
    "He has become more irritable and withdrawn over the past year.",
    "Café au lait spots noted on the trunk.",
    "Seen in the outpatient memory clinic today with his daughter.",
    "Gait is slow and shuffling with reduced arm swing.",
    "Family is considering memory care placement.",
    "Her son manages her finances and fills her pill box weekly.",
    "Findings are consistent with mild cognitive impairment.",
    "LA mildly dilated; EF 55-60%.",
    "Seen at 10:30 by the on-call physician.",
    "Patient is gravida 2 para 1 at 32 weeks.",
    "Okay to discharge home with outpatient follow-up.",
    "LOS was 3 days.",
    "HTN, DM, CKD stage 3.",
    "NO ACUTE DISTRESS.",
    "Hold hctz while on the diuretic trial.",
]

JUNK = [
    # empty
    ("", "empty"),
    ("   ", "empty"),
    ("...", "empty"),
    # markup
    ('{"sentences": ["He forgets names."]}', "markup"),
    ('"text": "She is confused at night."', "markup"),
    ('["Patient forgets appointments", "Wife reports"]', "markup"),
    ("category: cognitive_impairment", "markup"),
    ("He forgets names.</s>", "markup"),
    ("She repeats questions.<|im_end|>", "markup"),
    ("```json", "markup"),
    # prompt debris
    ("Provide assistance", "prompt_debris"),
    ("Sentence 1: The patient forgets recent conversations.", "prompt_debris"),
    ("Here are 5 sentences about cognitive impairment.", "prompt_debris"),
    ("Sure, here is an example of a clinical sentence.", "prompt_debris"),
    ("Category: Requiring assistance", "prompt_debris"),
    ("Write 5 different sentences from clinical notes.", "prompt_debris"),
    ("Each sentence must show the category of notice by others.", "prompt_debris"),
    ("As an AI language model, I cannot write patient notes.", "prompt_debris"),
    ("Example of the style: the patient is confused.", "prompt_debris"),
    ("The patient, speaker 2. Example 3: wandering at night.", "prompt_debris"),
    # numbers
    ("1] 5,2,3,7,10,...", "numbers"),
    ("12 14 16 18 20", "numbers"),
    ("3.5, 4.2, 7.8, 9.1 mg", "numbers"),
    ("19/30 22/30 on", "numbers"),
    # list
    ("- severity: severe", "list"),
    ("1. Memory loss", "list"),
    ("• forgets names and faces", "list"),
    ("Memory loss 2. Confusion 3. Agitation", "list"),
    ("memory loss, confusion, agitation, wandering, falls", "list"),
    ("He forgets names.\nShe is confused.", "list"),
    ("forgetfulness | confusion | agitation", "list"),
    # key: value
    ("severity: severe", "key_value"),
    ("setting: nursing home", "key_value"),
    ("Note section: telephone encounter", "key_value"),
    ("HPI:", "key_value"),
    ("speaker: report from a family member or caregiver", "key_value"),
    ("mood: anxious", "key_value"),
    ("Age: 78, Sex: F, MMSE: 22", "key_value"),
    # repetition
    ("the the the patient", "repetition"),
    ("He forgets forgets forgets his keys.", "repetition"),
    ("Memory memory loss memory problems memory decline memory.", "repetition"),
    ("He is confused and he is confused and he is confused.", "repetition"),
    # not English
    ("El paciente tiene pérdida de memoria y confusión.", "not_english"),
    ("Der Patient ist vergesslich und hat Probleme mit dem Gedächtnis.", "not_english"),
    ("患者有记忆力减退。", "not_english"),
    ("Пациент жалуется на забывчивость.", "not_english"),
    ("La patiente est très confuse avec des troubles de mémoire.", "not_english"),
    ("xkcd qwrtz bzzt pfft", "not_english"),
    # heading
    ("ASSESSMENT AND PLAN", "heading"),
    ("MEMORY CLINIC NOTE", "heading"),
    # too few words
    ("Confused.", "too_few_words"),
    ("Yes", "too_few_words"),
    # truncated
    ("The patient was started on donepezil and", "truncated"),
    ("Her daughter reports that she forgets the", "truncated"),
    ("He has trouble with memory,", "truncated"),
    ("MoCA was 18/30 with deficits in...", "truncated"),
    # copies of the definition
    ("Memory loss or forgetfulness, disorientation or confusion.", "copies_definition"),
    ("The patient needs help, supervision or reminders for daily activities.", "copies_definition"),
    ("Gait or balance problems, falls, weight loss.", "copies_definition"),
    ("A family member, caregiver or friend reports the patient's change.", "copies_definition"),
    ("Depression anxiety apathy agitation aggression irritability and hallucinations.", "copies_definition"),
    ("Bathing, dressing, meals, medications, finances, driving, appointments.", "copies_definition"),
]


@pytest.mark.parametrize("text", GOOD)
def test_clinical_sentences_pass(text):
    assert sentence_problem(text, DEFINITIONS) is None


@pytest.mark.parametrize("text, reason", JUNK)
def test_junk_is_rejected_with_its_reason(text, reason):
    assert sentence_problem(text, DEFINITIONS) == reason


def test_sizes_and_every_reason_is_covered():
    assert len(GOOD) >= 40 and len(JUNK) >= 30
    assert {reason for _, reason in JUNK} == set(REASON_CODES)


def test_reasons_are_documented_and_unique():
    assert len(REASON_CODES) == len(set(REASON_CODES)) == len(REASONS)
    assert all(code.isidentifier() and description for code, description in REASONS)


def test_demo_gold_and_taxonomy_examples_pass():
    texts = [json.loads(line)["text"] for line in (ROOT / "data/demo/gold.jsonl").read_text().splitlines() if line]
    texts += [e for c in TAXONOMY.categories for e in c.examples] + list(TAXONOMY.none.examples)
    rejected = [(t, p) for t, p in zip(texts, sentence_problems(texts, DEFINITIONS)) if p]
    assert rejected == []


def test_demo_negatives_pass():
    texts = [json.loads(line)["text"] for line in (ROOT / "data/demo/negatives.jsonl").read_text().splitlines() if line]
    assert [(t, p) for t, p in zip(texts, sentence_problems(texts, DEFINITIONS)) if p] == []


def test_copy_check_needs_the_definitions():
    copy = "Memory loss or forgetfulness, disorientation or confusion."
    assert sentence_problem(copy) is None
    assert sentence_problem(copy, DEFINITIONS) == "copies_definition"


def test_other_prompt_text_can_be_passed_as_definitions():
    assert sentence_problem("Outpatient memory clinic visit.", ["outpatient memory clinic"]) == "copies_definition"
    assert sentence_problem("Seen in the outpatient memory clinic today.", ["outpatient memory clinic"]) is None


def test_strip_item_marker_keeps_a_numbered_plan_item():
    assert sentence_problem("1. Start donepezil 5 mg nightly.") == "list"
    stripped = strip_item_marker("1. Start donepezil 5 mg nightly.")
    assert stripped == "Start donepezil 5 mg nightly."
    assert sentence_problem(stripped) is None
    assert strip_item_marker("- Lungs clear.") == "Lungs clear."
    assert strip_item_marker("3.5 cm lesion on the forearm.") == "3.5 cm lesion on the forearm."
