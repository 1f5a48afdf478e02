//! Segmentation, the classifier, its evaluation, the default taxonomy, the
//! learned model and its combination with the keywords, and the policy's
//! `classifier_training`.

use std::collections::BTreeMap;

use tousu_policy::bayes::{NaiveBayes, Options};
use tousu_policy::classify::{
    Classification, Classifier, Input, Sample, TITLE_WEIGHT, TRIAGE, evaluate, load_jsonl,
};
use tousu_policy::schema::{Diagnostic, Policy, Severity};
use tousu_policy::taxonomy::{Category, DEFAULT_CATEGORIES};
use tousu_policy::text::{is_stop_word, normalize, tokens};

// ---------------------------------------------------------------- helpers

fn category(code: &str, keywords: &[(&str, f64)], hints: &[&str]) -> Category {
    Category {
        code: code.to_owned(),
        name: code.to_owned(),
        department: Some("service".to_owned()),
        keywords: keywords
            .iter()
            .map(|&(term, weight)| (term.to_owned(), weight))
            .collect(),
        hints: hints.iter().map(|&h| h.to_owned()).collect(),
    }
}

/// A small taxonomy in the shape of the default one, with round weights so
/// that expected scores can be computed by hand.
fn small_taxonomy() -> Vec<Category> {
    vec![
        category(
            "logistics",
            &[
                ("快递", 2.0),
                ("没送到", 3.0),
                ("快递员态度", 5.0),
                ("deliver*", 2.0),
                ("late deliver*", 4.0),
                ("parcel", 2.0),
            ],
            &["物流", "Delivery"],
        ),
        category(
            "price_billing",
            &[
                ("多收", 3.0),
                ("收费", 2.0),
                ("overcharged", 3.0),
                ("refund", 1.0),
            ],
            &["billing", "价格"],
        ),
        category(
            "service_attitude",
            &[
                ("态度", 2.0),
                ("态度差", 3.0),
                ("rude", 3.0),
                ("hung up on me", 4.0),
                ("service", 1.0),
            ],
            &[],
        ),
        category(
            "refund_aftersales",
            &[
                ("退款", 3.0),
                ("refund", 2.0),
                ("refund*", 3.0),
                ("customer service hotline", 2.0),
            ],
            &["returns"],
        ),
        category("other", &[("建议", 3.0), ("suggest*", 3.0)], &["其他"]),
    ]
}

fn small() -> Classifier {
    Classifier::new(&small_taxonomy(), 0.2).expect("the small taxonomy compiles")
}

fn text(text: &str) -> Input<'_> {
    Input {
        text,
        ..Input::default()
    }
}

fn score(result: &Classification, code: &str) -> f64 {
    result
        .scores
        .iter()
        .find(|(c, _)| c == code)
        .map_or(0.0, |&(_, s)| s)
}

fn new_error(categories: &[Category]) -> String {
    match Classifier::new(categories, 0.2) {
        Ok(_) => panic!("the taxonomy should be refused"),
        Err(e) => e,
    }
}

// ----------------------------------------------------------- segmentation

#[test]
fn chinese_complaint_is_segmented_and_stop_words_dropped() {
    assert_eq!(
        tokens("我要投诉快递延误三天"),
        ["要", "投诉", "快递", "延误", "三天"]
    );
    let words = tokens("你们的快递员把我的包裹放在门口，结果丢了，我们很生气！");
    for expected in ["快递", "包裹", "门口", "丢", "生气"] {
        assert!(
            words.iter().any(|w| w == expected),
            "{expected} in {words:?}"
        );
    }
    for dropped in ["的", "我", "我们", "了", "，", "！"] {
        assert!(
            !words.iter().any(|w| w == dropped),
            "{dropped} in {words:?}"
        );
    }
}

#[test]
fn english_is_lower_cased_split_on_punctuation_and_stop_words_dropped() {
    assert_eq!(
        tokens("The parcel was NOT delivered!"),
        ["parcel", "not", "delivered"]
    );
    assert_eq!(
        tokens("I've called customer-service 3 times; they hung up on me."),
        ["called", "customer", "service", "3", "times", "hung", "up"]
    );
}

#[test]
fn full_width_input_reads_as_half_width() {
    assert_eq!(
        normalize("ＡＰＰ闪退，ｉＰｈｏｎｅ１５！"),
        "app闪退 iphone15"
    );
    let words = tokens("ＡＰＰ闪退，ｉＰｈｏｎｅ１５！");
    assert!(words.contains(&"app".to_owned()), "{words:?}");
    assert!(words.contains(&"iphone15".to_owned()), "{words:?}");
    assert_eq!(tokens("ＲＵＤＥ　ＳＴＡＦＦ"), tokens("rude staff"));
}

#[test]
fn numbers_are_kept() {
    let words = tokens("等了15天，订单号20240305");
    assert!(words.contains(&"15".to_owned()), "{words:?}");
    assert!(words.contains(&"20240305".to_owned()), "{words:?}");
}

#[test]
fn empty_whitespace_and_emoji_only_text_has_no_tokens() {
    for input in ["", "   \n\t ", "😡😡😡👎", "？！…。，", "\u{3000}\u{3000}"] {
        assert!(tokens(input).is_empty(), "{input:?}");
        assert_eq!(normalize(input), "", "{input:?}");
    }
}

#[test]
fn stop_word_lists_cover_both_languages_but_not_negations() {
    for word in ["的", "了", "我们", "一个", "the", "of", "is", "were"] {
        assert!(is_stop_word(word), "{word}");
    }
    for word in ["不", "没", "not", "no", "never", "快递", "refund"] {
        assert!(!is_stop_word(word), "{word}");
    }
}

// -------------------------------------------------------------- classifier

#[test]
fn a_clear_complaint_wins_its_category_with_its_terms_as_explanation() {
    let result = small().classify(&text("快递一直没送到家，打了好几次电话"));
    assert_eq!(result.category, "logistics");
    assert!(!result.triage);
    // 没送到 matches inside 没送到家 (substring), 快递 as well.
    assert_eq!(result.terms, ["没送到", "快递"]);
    assert_eq!(score(&result, "logistics"), 5.0);
}

#[test]
fn empty_and_unreadable_input_goes_to_triage_with_confidence_zero() {
    let classifier = small();
    for input in ["", "    ", "😡😡😡", "……！！！"] {
        let result = classifier.classify(&Input {
            title: input,
            text: input,
            category_hint: input,
            product: input,
            location: input,
        });
        assert_eq!(result.category, TRIAGE, "{input:?}");
        assert!(result.triage);
        assert_eq!(result.confidence, 0.0);
        assert!(result.scores.is_empty());
        assert!(result.terms.is_empty());
    }
}

#[test]
fn text_without_any_term_goes_to_triage_even_at_threshold_zero() {
    let classifier = Classifier::new(&small_taxonomy(), 0.0).expect("compiles");
    let result = classifier.classify(&text("今天天气不错，随便说说"));
    assert_eq!(result.category, TRIAGE);
    assert!(result.triage);
    assert_eq!(result.confidence, 0.0);
}

#[test]
fn very_long_input_is_classified_without_trouble() {
    let long = "快递没送到，客服态度差。".repeat(20_000);
    let result = small().classify(&Input {
        title: &long,
        text: &long,
        ..Input::default()
    });
    assert_eq!(result.category, "logistics");
    // Presence, not frequency: 20,000 repetitions count once per field.
    assert_eq!(
        score(&result, "logistics"),
        (2.0 + 3.0) * (TITLE_WEIGHT + 1.0)
    );
}

#[test]
fn the_hint_boosts_its_category_ignoring_case_and_width() {
    let classifier = small();
    let plain = classifier.classify(&text("快递收费"));
    assert_eq!(plain.category, "logistics", "{plain:?}");
    for hint in [
        "billing",
        "BILLING",
        "ｂｉｌｌｉｎｇ",
        " 价格 ",
        "price_billing",
    ] {
        let hinted = classifier.classify(&Input {
            text: "快递收费",
            category_hint: hint,
            ..Input::default()
        });
        assert_eq!(hinted.category, "price_billing", "hint {hint:?}");
        assert!(score(&hinted, "price_billing") > score(&plain, "price_billing"));
        assert_eq!(
            hinted.terms.first().map(String::as_str),
            Some(format!("hint:{}", hint.trim()).as_str())
        );
    }
    let unknown = classifier.classify(&Input {
        text: "快递收费",
        category_hint: "something else",
        ..Input::default()
    });
    assert_eq!(unknown.scores, plain.scores);
}

#[test]
fn a_hint_alone_decides_when_the_text_says_nothing() {
    let result = small().classify(&Input {
        text: "请尽快处理",
        category_hint: "物流",
        ..Input::default()
    });
    assert_eq!(result.category, "logistics");
    assert_eq!(result.terms, ["hint:物流"]);
}

#[test]
fn a_term_in_the_title_counts_more_than_in_the_body() {
    let classifier = small();
    let body = classifier.classify(&text("多收"));
    let title = classifier.classify(&Input {
        title: "多收",
        ..Input::default()
    });
    assert_eq!(score(&body, "price_billing"), 3.0);
    assert_eq!(score(&title, "price_billing"), 3.0 * TITLE_WEIGHT);
    // Equal weights: the title's category beats the body's.
    let both = classifier.classify(&Input {
        title: "多收",
        text: "态度差",
        ..Input::default()
    });
    assert_eq!(both.category, "price_billing");
}

#[test]
fn product_and_location_words_count_like_text_but_once() {
    let classifier = small();
    let in_product = classifier.classify(&Input {
        text: "还没到",
        product: "快递",
        ..Input::default()
    });
    assert_eq!(in_product.category, "logistics");
    assert_eq!(score(&in_product, "logistics"), 2.0);
    let everywhere = classifier.classify(&Input {
        text: "快递",
        product: "快递",
        location: "快递站",
        ..Input::default()
    });
    assert_eq!(score(&everywhere, "logistics"), 2.0);
}

#[test]
fn a_longer_phrase_silences_the_words_inside_it_across_categories() {
    let classifier = small();
    // 快递员态度 (logistics) contains 快递 (logistics) and 态度 (attitude).
    let result = classifier.classify(&text("快递员态度恶劣"));
    assert_eq!(result.category, "logistics");
    assert_eq!(score(&result, "logistics"), 5.0);
    assert_eq!(score(&result, "service_attitude"), 0.0);
    assert_eq!(result.terms, ["快递员态度"]);

    // English phrase against a word: `service` alone is attitude, inside
    // the phrase it is not.
    let phrase = classifier.classify(&text("I called the customer service hotline twice"));
    assert_eq!(phrase.category, "refund_aftersales");
    assert_eq!(score(&phrase, "service_attitude"), 0.0);
    let word = classifier.classify(&text("the service was slow"));
    assert_eq!(word.category, "service_attitude");
}

#[test]
fn overlapping_matches_that_do_not_contain_each_other_both_count() {
    // 态度差 and 快递员态度 overlap on 态度 without either containing the
    // other: both are evidence.
    let result = small().classify(&text("快递员态度差"));
    assert_eq!(score(&result, "logistics"), 5.0);
    assert_eq!(score(&result, "service_attitude"), 3.0);
}

#[test]
fn phrases_need_their_words_in_order_and_adjacent() {
    let classifier = small();
    let exact = classifier.classify(&text("The agent HUNG UP ON ME."));
    assert_eq!(score(&exact, "service_attitude"), 4.0);
    for miss in [
        "he hung up on us",
        "on me he hung up",
        "hung up, then on me",
    ] {
        let result = classifier.classify(&text(miss));
        assert_eq!(score(&result, "service_attitude"), 0.0, "{miss}");
    }
}

#[test]
fn chinese_terms_do_not_match_across_punctuation() {
    // 快递。员工 must not read as 快递员.
    let result = small().classify(&text("我寄的快递。员工态度还行"));
    assert!(
        !result.terms.iter().any(|t| t == "快递员态度"),
        "{result:?}"
    );
}

#[test]
fn prefix_terms_match_any_ending_but_only_at_the_start_of_a_word() {
    let classifier = small();
    for matching in ["delivery", "delivered", "deliveries", "DELIVER"] {
        let result = classifier.classify(&text(matching));
        assert_eq!(score(&result, "logistics"), 2.0, "{matching}");
    }
    let inside = classifier.classify(&text("undelivered"));
    assert_eq!(score(&inside, "logistics"), 0.0);
    // A prefix at the end of a phrase.
    let phrase = classifier.classify(&text("a late delivery again"));
    assert_eq!(score(&phrase, "logistics"), 4.0, "{phrase:?}");
    assert_eq!(phrase.terms, ["late deliver*"]);
}

#[test]
fn two_terms_of_one_category_on_the_same_word_count_once_at_the_higher_weight() {
    // `refund` (2) and `refund*` (3) of refund_aftersales both match
    // "refund"; `refund` of price_billing (1) is another category's
    // evidence on the same word and stays.
    let result = small().classify(&text("refund"));
    assert_eq!(score(&result, "refund_aftersales"), 3.0);
    assert_eq!(score(&result, "price_billing"), 1.0);
    assert_eq!(result.terms, ["refund*"]);
}

#[test]
fn scores_are_sorted_best_first_with_ties_in_taxonomy_order() {
    // 收费 (price 2) and 态度 (attitude 2) tie; price comes first in the
    // taxonomy.
    let result = small().classify(&text("收费窗口的人态度一般"));
    assert_eq!(
        result.scores,
        [
            ("price_billing".to_owned(), 2.0),
            ("service_attitude".to_owned(), 2.0)
        ]
    );
    assert_eq!(result.category, "price_billing");
    let mut sorted = small()
        .classify(&text("快递没送到，多收了钱，态度差"))
        .scores;
    let copy = sorted.clone();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(sorted, copy);
}

#[test]
fn confidence_stays_in_bounds_and_is_monotone() {
    let classifier = small();
    let texts = [
        "快递",
        "快递没送到",
        "快递没送到 parcel",
        "快递没送到 parcel late delivery",
        "快递没送到 parcel late delivery 收费",
        "快递没送到 parcel late delivery 收费 多收",
        "快递没送到 parcel late delivery 收费 多收 态度差 rude",
    ];
    let confidences: Vec<f64> = texts
        .iter()
        .map(|t| classifier.classify(&text(t)).confidence)
        .collect();
    for c in &confidences {
        assert!((0.0..=1.0).contains(c), "{confidences:?}");
    }
    // More evidence for the winner raises confidence…
    assert!(confidences[0] < confidences[1]);
    assert!(confidences[1] < confidences[2]);
    assert!(confidences[2] < confidences[3]);
    // …rival evidence lowers it.
    assert!(confidences[4] < confidences[3]);
    assert!(confidences[5] < confidences[4]);
    assert!(confidences[6] < confidences[5]);
    // A winner with no rival and a lot of evidence approaches 1.
    let strong = classifier.classify(&Input {
        title: "快递没送到",
        text: "快递没送到 parcel late delivery",
        category_hint: "delivery",
        ..Input::default()
    });
    assert!(
        strong.confidence > 0.99 && strong.confidence <= 1.0,
        "{strong:?}"
    );
}

#[test]
fn below_the_threshold_the_complaint_goes_to_triage_with_its_scores() {
    let strict = Classifier::new(&small_taxonomy(), 0.9).expect("compiles");
    let result = strict.classify(&text("快递收费"));
    assert!(result.triage);
    assert_eq!(result.category, TRIAGE);
    assert!(result.confidence > 0.0 && result.confidence < 0.9);
    // The best guesses are still there for the person in triage.
    assert_eq!(
        result.scores.first().map(|(c, _)| c.as_str()),
        Some("logistics")
    );
    assert_eq!(result.terms, ["快递"]);

    let lenient = Classifier::new(&small_taxonomy(), 0.1).expect("compiles");
    let result = lenient.classify(&text("快递收费"));
    assert!(!result.triage);
    assert_eq!(result.category, "logistics");
}

#[test]
fn other_is_chosen_by_its_own_terms_not_as_a_fallback() {
    let classifier = small();
    let suggestion = classifier.classify(&text("I suggest longer opening hours"));
    assert_eq!(suggestion.category, "other");
    let nothing = classifier.classify(&text("longer opening hours"));
    assert_eq!(nothing.category, TRIAGE);
}

// ------------------------------------------------------ taxonomy problems

#[test]
fn bad_taxonomies_are_refused_with_the_category_and_term_named() {
    let cases: Vec<(Vec<Category>, &str)> = vec![
        (vec![], "no categories"),
        (vec![category("triage", &[("x", 1.0)], &[])], "reserved"),
        (
            vec![category("a", &[], &[]), category("a", &[], &[])],
            "`a` is defined twice",
        ),
        (vec![category("", &[], &[])], "empty code"),
        (vec![category("a", &[("快递", 0.0)], &[])], "positive"),
        (vec![category("a", &[("快递", -1.0)], &[])], "positive"),
        (vec![category("a", &[("快递", f64::NAN)], &[])], "positive"),
        (
            vec![category("a", &[("快递", f64::INFINITY)], &[])],
            "positive",
        ),
        (
            vec![category("a", &[("de*liver", 1.0)], &[])],
            "only allowed at the end",
        ),
        (
            vec![category("a", &[("快递*", 1.0)], &[])],
            "only applies to English",
        ),
        (
            vec![category("a", &[("？！", 1.0)], &[])],
            "no letters or digits",
        ),
        (
            vec![category("a", &[("*", 1.0)], &[])],
            "no letters or digits",
        ),
        (
            vec![category("a", &[("de*", 1.0)], &[])],
            "at least 3 letters",
        ),
        (
            vec![category("a", &[("Wi-Fi", 1.0), ("wi fi", 2.0)], &[])],
            "matches exactly what",
        ),
        (vec![category("a", &[("x", 1.0)], &["!!"])], "hint"),
    ];
    for (categories, expected) in cases {
        let error = new_error(&categories);
        assert!(
            error.contains(expected),
            "{error:?} should mention {expected:?}"
        );
    }
    let error = new_error(&[category(
        "logistics",
        &[("快递", 2.0), ("de*liver", 1.0)],
        &[],
    )]);
    assert!(
        error.contains("logistics") && error.contains("de*liver"),
        "{error}"
    );
}

#[test]
fn thresholds_outside_zero_to_one_are_refused() {
    for threshold in [-0.1, 1.1, f64::NAN, f64::INFINITY] {
        assert!(
            Classifier::new(&small_taxonomy(), threshold).is_err(),
            "{threshold}"
        );
    }
    for threshold in [0.0, 0.5, 1.0] {
        assert!(Classifier::new(&small_taxonomy(), threshold).is_ok());
    }
}

#[test]
fn the_same_term_in_two_categories_is_evidence_for_both() {
    let categories = vec![
        category("a", &[("质量", 2.0)], &[]),
        category("b", &[("质量", 2.0), ("服务", 1.0)], &[]),
    ];
    let classifier = Classifier::new(&categories, 0.0).expect("compiles");
    let result = classifier.classify(&text("服务质量"));
    assert_eq!(score(&result, "a"), 2.0);
    assert_eq!(score(&result, "b"), 3.0);
    assert_eq!(result.category, "b");
}

// ----------------------------------------------------------- JSONL and eval

#[test]
fn jsonl_loads_with_missing_and_null_fields_as_empty_and_skips_blank_lines() {
    let text = concat!(
        r#"{"id":"a","language":"zh","channel":"phone","title":"","text":"快递没送到","category_hint":"","product":"","location":"","category":"logistics","source":"seeds_A"}"#,
        "\n\n   \n",
        r#"{"id":"b","text":"rude agent","category":"service_attitude","product":null}"#,
        "\n",
    );
    let samples = load_jsonl(text).expect("valid");
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].channel, "phone");
    assert_eq!(samples[1].product, "");
    assert_eq!(samples[1].title, "");
    assert_eq!(samples[1].input().text, "rude agent");
}

#[test]
fn jsonl_errors_name_the_line() {
    let good = r#"{"id":"a","text":"x","category":"logistics"}"#;
    let cases = [
        (
            format!("{good}\n{good}\n{{\"id\": \"c\", \"text\": \n"),
            "line 3",
        ),
        (
            format!("{good}\n{{\"id\":\"b\",\"text\":\"x\"}}\n"),
            "line 2",
        ),
        (
            format!("{good}\n{{\"id\":\"b\",\"text\":\"x\",\"category\":\"  \"}}"),
            "line 2",
        ),
        (
            "\n\n{\"id\":\"a\",\"categroy\":\"logistics\"}".to_owned(),
            "line 3",
        ),
        (format!("{good}\n[1, 2]"), "line 2"),
        (
            format!("{good}\n{{\"id\": 5, \"category\": \"x\"}}"),
            "line 2",
        ),
    ];
    for (text, line) in cases {
        let error = load_jsonl(&text).expect_err("invalid");
        assert!(
            error.starts_with(line),
            "{error:?} should start with {line}"
        );
        assert!(!error.contains("line 1 column"), "{error}");
    }
    let error =
        load_jsonl(&format!("{good}\n{{\"id\":\"b\",\"categroy\":\"x\"}}")).expect_err("typo");
    assert!(error.contains("categroy"), "{error}");
}

fn sample(id: &str, text: &str, category: &str) -> Sample {
    Sample {
        id: id.to_owned(),
        text: text.to_owned(),
        category: category.to_owned(),
        ..Sample::default()
    }
}

#[test]
fn evaluation_counts_a_hand_made_set_exactly() {
    let samples = vec![
        sample("1", "快递没送到", "logistics"),           // right
        sample("2", "parcel late delivery", "logistics"), // right
        sample("3", "多收了钱", "price_billing"),         // right
        sample("4", "快递收费太贵", "price_billing"),     // wrong: logistics
        sample("5", "态度差", "service_attitude"),        // right
        sample("6", "今天天气不错", "service_attitude"),  // wrong: triage
        sample("7", "建议延长营业时间", "other"),         // right
        sample("8", "退款", "refund_aftersales"),         // right
        sample("9", "快递没送到", "logisitcs"),           // wrong: unknown label
    ];
    let evaluation = evaluate(&small(), &samples);
    assert_eq!(evaluation.total, 9);
    assert_eq!(evaluation.correct, 6);
    assert!((evaluation.accuracy - 6.0 / 9.0).abs() < 1e-12);

    let expected: BTreeMap<(String, String), usize> = [
        (("logistics", "logistics"), 2),
        (("price_billing", "price_billing"), 1),
        (("price_billing", "logistics"), 1),
        (("service_attitude", "service_attitude"), 1),
        (("service_attitude", TRIAGE), 1),
        (("other", "other"), 1),
        (("refund_aftersales", "refund_aftersales"), 1),
        (("logisitcs", "logistics"), 1),
    ]
    .into_iter()
    .map(|((e, p), n)| ((e.to_owned(), p.to_owned()), n))
    .collect();
    assert_eq!(evaluation.confusion, expected);

    let logistics = evaluation.per_category["logistics"];
    assert_eq!(
        (logistics.support, logistics.predicted, logistics.correct),
        (2, 4, 2)
    );
    assert!((logistics.precision - 0.5).abs() < 1e-12);
    assert!((logistics.recall - 1.0).abs() < 1e-12);
    assert!((logistics.f1 - 2.0 / 3.0).abs() < 1e-12);
    let price = evaluation.per_category["price_billing"];
    assert_eq!((price.support, price.predicted, price.correct), (2, 1, 1));
    assert!((price.precision - 1.0).abs() < 1e-12);
    assert!((price.recall - 0.5).abs() < 1e-12);
    let triage = evaluation.per_category[TRIAGE];
    assert_eq!(
        (triage.support, triage.predicted, triage.correct),
        (0, 1, 0)
    );
    assert_eq!(triage.f1, 0.0);

    assert_eq!(
        evaluation.unknown_labels.iter().collect::<Vec<_>>(),
        ["logisitcs"]
    );
    let missed: Vec<&str> = evaluation.misses.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(missed, ["4", "6", "9"]);
    assert_eq!(evaluation.misses[1].predicted, TRIAGE);
}

#[test]
fn evaluation_display_prints_accuracy_and_a_labeled_matrix() {
    let samples = vec![
        sample("1", "快递没送到", "logistics"),
        sample("2", "快递收费太贵", "price_billing"),
        sample("3", "态度差", "service_attitude"),
    ];
    let shown = evaluate(&small(), &samples).to_string();
    assert!(shown.starts_with("accuracy: 66.7% (2/3)\n"), "{shown}");
    let lines: Vec<&str> = shown.lines().collect();
    let header = lines
        .iter()
        .find(|l| l.starts_with("expected \\ predicted"))
        .expect("matrix header");
    // Columns: only labels that occur, in taxonomy order.
    let columns: Vec<&str> = header.split_whitespace().skip(3).collect();
    assert_eq!(columns, ["logistics", "price_billing", "service_attitude"]);
    let row = lines
        .iter()
        .find(|l| l.starts_with("price_billing "))
        .expect("price row");
    let cells: Vec<&str> = row.split_whitespace().skip(1).collect();
    assert_eq!(cells, ["1", ".", "."]);
    assert!(shown.contains("precision"), "{shown}");
}

#[test]
fn evaluation_of_an_empty_set_is_zero_not_nan() {
    let evaluation = evaluate(&small(), &[]);
    assert_eq!(evaluation.total, 0);
    assert_eq!(evaluation.accuracy, 0.0);
    assert!(evaluation.confusion.is_empty());
    assert_eq!(evaluation.to_string(), "accuracy: 0.0% (0/0)\n");
}

// -------------------------------------------------------- default taxonomy

#[derive(serde::Deserialize)]
struct TaxonomyFile {
    taxonomy: Vec<Category>,
}

fn default_taxonomy() -> Vec<Category> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default.toml");
    let text = std::fs::read_to_string(path).expect("policies/default.toml");
    let file: TaxonomyFile = toml::from_str(&text).expect("the default taxonomy parses");
    file.taxonomy
}

#[test]
fn the_default_taxonomy_has_every_default_category_with_department_and_keywords() {
    let taxonomy = default_taxonomy();
    let codes: Vec<&str> = taxonomy.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(codes, DEFAULT_CATEGORIES);
    let departments = [
        "service",
        "quality",
        "logistics",
        "billing",
        "legal",
        "operations",
    ];
    for category in &taxonomy {
        let department = category.department.as_deref().unwrap_or("");
        assert!(
            departments.contains(&department),
            "{}: {department:?}",
            category.code
        );
        assert!(category.keywords.len() >= 50, "{}", category.code);
        assert!(!category.hints.is_empty(), "{}", category.code);
        assert!(!category.name.is_empty(), "{}", category.code);
    }
    let total: usize = taxonomy.iter().map(|c| c.keywords.len()).sum();
    assert!(total >= 1000, "{total} terms");
}

#[test]
fn the_default_taxonomy_compiles_and_hints_point_at_one_category_each() {
    let taxonomy = default_taxonomy();
    let classifier = Classifier::new(&taxonomy, 0.2).expect("the default taxonomy compiles");
    assert_eq!(classifier.codes(), DEFAULT_CATEGORIES);
    let mut seen = BTreeMap::new();
    for category in &taxonomy {
        for hint in &category.hints {
            let key = normalize(hint);
            if let Some(other) = seen.insert(key, &category.code) {
                panic!(
                    "hint {hint:?} of {} is also a hint of {other}",
                    category.code
                );
            }
        }
    }
}

#[test]
fn the_default_taxonomy_sorts_plain_complaints_of_every_category() {
    let classifier = Classifier::new(&default_taxonomy(), 0.2).expect("compiles");
    let cases = [
        (
            "product_quality",
            "新买的电饭煲用了三天就不加热了，质量太差",
        ),
        (
            "product_quality",
            "The kettle I bought last week stopped working and the handle cracked.",
        ),
        (
            "logistics",
            "快递显示已签收，可我根本没收到包裹，快递员电话也不接",
        ),
        (
            "logistics",
            "My parcel has been stuck in transit for two weeks and tracking is not updated.",
        ),
        (
            "price_billing",
            "这个月话费莫名多扣了三十元，账单上有一项我没开通的收费",
        ),
        (
            "price_billing",
            "I was charged twice for the same order, please correct the bill.",
        ),
        (
            "refund_aftersales",
            "七天无理由退货被商家拒绝，退款申请一直被驳回",
        ),
        (
            "refund_aftersales",
            "The shop refused a refund and says the warranty does not cover it.",
        ),
        ("service_attitude", "营业厅工作人员态度恶劣，还对我大吼大叫"),
        (
            "service_attitude",
            "The receptionist was extremely rude and rolled her eyes at me.",
        ),
        (
            "service_efficiency",
            "银行只开一个窗口，排队等了两个小时还没办上",
        ),
        (
            "service_efficiency",
            "I have been on hold for an hour and nobody called back as promised.",
        ),
        (
            "contract_dispute",
            "健身房单方面变更合同条款，会员卡余额不给退",
        ),
        (
            "contract_dispute",
            "The gym changed the terms of my contract without notice.",
        ),
        (
            "privacy_security",
            "我的个人信息被泄露，每天接到好几个骚扰电话",
        ),
        (
            "privacy_security",
            "Someone used my personal information to open an account in my name.",
        ),
        (
            "facilities_environment",
            "小区电梯经常故障，楼道灯也不亮，存在安全隐患",
        ),
        (
            "facilities_environment",
            "The restrooms in the mall are filthy and the escalator is out of order.",
        ),
        ("other", "建议你们增加周末的营业时间，方便上班族"),
        (
            "other",
            "I would like to suggest adding a vegetarian option to the menu.",
        ),
    ];
    for (expected, complaint) in cases {
        let result = classifier.classify(&text(complaint));
        assert_eq!(result.category, expected, "{complaint}: {result:?}");
        assert!(!result.terms.is_empty());
    }
}

// ------------------------------------------------------- the learned model

/// Options under which probabilities can be computed by hand: words only,
/// every word kept, Laplace smoothing, no tempering.
fn plain_options() -> Options {
    Options {
        alpha: 1.0,
        min_count: 1,
        max_features: 1000,
        title_weight: 2.0,
        words: true,
        han_bigrams: false,
        han_unigrams: false,
        english_bigrams: false,
        hint: false,
        temperature: 1.0,
    }
}

/// Two categories, two complaints each. Vocabulary (6 words): parcel,
/// late, lost (logistics: 4 words); charged, twice, fee (price: 4 words).
fn tiny_set() -> Vec<Sample> {
    vec![
        sample("l1", "parcel late", "logistics"),
        sample("l2", "parcel lost", "logistics"),
        sample("p1", "charged twice", "price_billing"),
        sample("p2", "fee charged", "price_billing"),
    ]
}

fn tiny_model() -> NaiveBayes {
    NaiveBayes::train(&tiny_set(), &plain_options()).expect("trains")
}

fn probability(prediction: &[(String, f64)], code: &str) -> f64 {
    prediction
        .iter()
        .find(|(c, _)| c == code)
        .map_or(f64::NAN, |&(_, p)| p)
}

#[test]
fn naive_bayes_on_a_tiny_set_predicts_exactly_the_hand_computed_posterior() {
    let model = tiny_model();
    assert_eq!(model.codes(), ["logistics", "price_billing"]);
    assert_eq!(model.vocabulary_len(), 6);
    // P(parcel | logistics) = (2 + 1) / (4 + 6) = 0.3,
    // P(parcel | price) = (0 + 1) / (4 + 6) = 0.1, equal priors:
    // posterior 0.3 / (0.3 + 0.1) = 0.75.
    let parcel = model.predict(&text("Where is my PARCEL?"));
    assert_eq!(parcel[0].0, "logistics");
    assert!((parcel[0].1 - 0.75).abs() < 1e-6, "{parcel:?}");
    assert!((probability(&parcel, "price_billing") - 0.25).abs() < 1e-6);
    // In the title a word counts twice: 0.3² / (0.3² + 0.1²) = 0.9.
    let title = model.predict(&Input {
        title: "parcel",
        ..Input::default()
    });
    assert!(
        (probability(&title, "logistics") - 0.9).abs() < 1e-6,
        "{title:?}"
    );
    // One word for each side: 0.3 × 0.1 against 0.1 × 0.3, a tie, listed
    // in code order.
    let tie = model.predict(&text("parcel charged"));
    assert!((tie[0].1 - 0.5).abs() < 1e-6 && (tie[1].1 - 0.5).abs() < 1e-6);
    assert_eq!(tie[0].0, "logistics");
    // A word counts once however often it is repeated.
    assert_eq!(model.predict(&text("parcel parcel parcel")), parcel);
}

#[test]
fn smoothing_keeps_a_category_possible_for_words_never_seen_with_it() {
    let model = tiny_model();
    // `lost` was only seen with logistics: P(lost | price) = 1/10, not 0.
    let lost = model.predict(&text("lost"));
    assert!((probability(&lost, "logistics") - 0.2 / 0.3).abs() < 1e-6);
    assert!((probability(&lost, "price_billing") - 0.1 / 0.3).abs() < 1e-6);
    // Words the model never saw change nothing…
    assert_eq!(
        model.predict(&text("parcel unicorn rainbow")),
        model.predict(&text("parcel"))
    );
    // …and a complaint of only such words gets no opinion at all, not the
    // prior dressed up as one.
    assert!(model.predict(&text("unicorn rainbow")).is_empty());
}

#[test]
fn naive_bayes_on_empty_or_unreadable_input_abstains() {
    let model = tiny_model();
    for input in ["", "   ", "😡😡😡", "……！！！"] {
        let everywhere = Input {
            title: input,
            text: input,
            category_hint: input,
            product: input,
            location: input,
        };
        assert!(model.predict(&everywhere).is_empty(), "{input:?}");
        assert!(model.posterior(&everywhere).abstains());
    }
}

#[test]
fn the_same_training_gives_the_same_predictions_whatever_the_sample_order() {
    let samples = vec![
        sample("1", "快递三天了还没送到，物流信息不更新", "logistics"),
        sample("2", "快递员没打电话就把包裹放在门口丢了", "logistics"),
        sample("3", "账单多扣了三十元，乱收费", "price_billing"),
        sample("4", "同一笔订单被扣了两次钱", "price_billing"),
        sample(
            "5",
            "The parcel never arrived and tracking is stuck",
            "logistics",
        ),
        sample("6", "I was charged twice for one order", "price_billing"),
    ];
    let options = Options::default();
    let a = NaiveBayes::train(&samples, &options).expect("trains");
    let b = NaiveBayes::train(&samples, &options).expect("trains");
    let mut reversed = samples.clone();
    reversed.reverse();
    let c = NaiveBayes::train(&reversed, &options).expect("trains");
    assert_eq!(a.vocabulary_len(), c.vocabulary_len());
    for complaint in [
        "快递还没送到",
        "多扣了钱",
        "扣了两次钱",
        "物流不更新，多扣了钱",
    ] {
        let expected = a.predict(&text(complaint));
        assert!(!expected.is_empty(), "{complaint}");
        assert_eq!(b.predict(&text(complaint)), expected, "{complaint}");
        assert_eq!(c.predict(&text(complaint)), expected, "{complaint}");
    }
}

#[test]
fn the_vocabulary_is_capped_by_count_and_size() {
    let samples = tiny_set();
    // Every word but `parcel` and `charged` appears in one complaint only.
    let twice = NaiveBayes::train(
        &samples,
        &Options {
            min_count: 2,
            ..plain_options()
        },
    )
    .expect("trains");
    assert_eq!(twice.vocabulary_len(), 2);
    let capped = NaiveBayes::train(
        &samples,
        &Options {
            max_features: 3,
            ..plain_options()
        },
    )
    .expect("trains");
    assert_eq!(capped.vocabulary_len(), 3);
    // The two words seen twice carry the most information and stay.
    assert!(!capped.predict(&text("parcel")).is_empty());
    assert!(!capped.predict(&text("charged")).is_empty());
}

#[test]
fn training_refuses_no_samples_and_options_out_of_range() {
    assert!(NaiveBayes::train(&[], &Options::default()).is_err());
    let bad = [
        Options {
            alpha: 0.0,
            ..Options::default()
        },
        Options {
            alpha: f64::NAN,
            ..Options::default()
        },
        Options {
            title_weight: -1.0,
            ..Options::default()
        },
        Options {
            temperature: 0.0,
            ..Options::default()
        },
        Options {
            max_features: 0,
            ..Options::default()
        },
    ];
    for options in bad {
        assert!(
            NaiveBayes::train(&tiny_set(), &options).is_err(),
            "{options:?}"
        );
    }
    let unlabeled = vec![sample("x", "parcel", "  ")];
    let error = NaiveBayes::train(&unlabeled, &Options::default()).expect_err("no label");
    assert!(error.contains("no category"), "{error}");
}

// -------------------------------------------- keywords combined with model

/// The small taxonomy with a model trained on complaints that use words
/// the taxonomy does not list.
fn combined(weight: f64) -> Classifier {
    let samples = vec![
        sample("1", "等了半个月包裹还在路上", "logistics"),
        sample("2", "包裹被放在门口弄丢了", "logistics"),
        sample("3", "my package is stuck in transit", "logistics"),
        sample("4", "package stuck at the depot", "logistics"),
        sample("5", "账单上莫名其妙多了一笔钱", "price_billing"),
        sample("6", "账单金额不对，多了一笔", "price_billing"),
        sample("7", "the bill shows an extra amount", "price_billing"),
        sample("8", "extra amount on my bill again", "price_billing"),
        sample("9", "柜员对我翻白眼", "service_attitude"),
        sample("10", "the clerk rolled her eyes at me", "service_attitude"),
    ];
    let model = NaiveBayes::train(&samples, &Options::default()).expect("trains");
    Classifier::with_model(&small_taxonomy(), 0.2, model, weight).expect("compiles")
}

#[test]
fn without_a_model_the_classifier_is_the_keyword_classifier() {
    let classifier = small();
    assert!(classifier.model().is_none());
    let result = classifier.classify(&text("快递一直没送到家"));
    assert_eq!(score(&result, "logistics"), 5.0);
    assert!(!result.terms.iter().any(|t| t.starts_with("model:")));
}

#[test]
fn the_model_decides_what_no_keyword_covers_and_explains_itself() {
    let classifier = combined(0.5);
    // No term of the taxonomy matches; the model learned these words.
    for (complaint, expected) in [
        ("包裹还在路上，等了半个月", "logistics"),
        ("My package is stuck again", "logistics"),
        ("账单上又多了一笔", "price_billing"),
        ("an extra amount on the bill", "price_billing"),
    ] {
        assert_eq!(small().classify(&text(complaint)).category, TRIAGE);
        let result = classifier.classify(&text(complaint));
        assert_eq!(result.category, expected, "{complaint}: {result:?}");
        assert!(!result.triage);
        let explanation = result.terms.last().expect("an explanation");
        assert!(explanation.starts_with("model: "), "{explanation}");
        assert!(explanation.contains(" +"), "{explanation}");
    }
    let result = classifier.classify(&text("My package is stuck again"));
    assert!(result.terms[0].contains("package"), "{:?}", result.terms);
}

#[test]
fn keywords_and_model_agreeing_is_more_confident_than_either_alone() {
    let classifier = combined(0.5);
    let model_only = classifier.classify(&text("包裹还在路上"));
    let both = classifier.classify(&text("快递包裹还在路上，一直没送到"));
    assert_eq!(both.category, "logistics");
    assert!(
        both.confidence > model_only.confidence,
        "{both:?} {model_only:?}"
    );
    // The keyword terms come first, then the model's.
    assert_eq!(both.terms[0], "没送到");
    assert!(both.terms.last().is_some_and(|t| t.starts_with("model: ")));
}

#[test]
fn the_combined_confidence_stays_in_bounds_and_is_monotone() {
    for weight in [0.0, 0.3, 0.5, 0.8, 1.0] {
        let classifier = combined(weight);
        for complaint in [
            "",
            "包裹",
            "快递没送到 parcel late delivery 收费 多收 态度差 rude",
            "the clerk rolled her eyes and I was overcharged",
            "账单多了一笔，快递也没送到",
        ] {
            let result = classifier.classify(&text(complaint));
            assert!(
                (0.0..=1.0).contains(&result.confidence),
                "{weight} {complaint}: {result:?}"
            );
            for (_, s) in &result.scores {
                assert!((0.0..=1.0).contains(s), "{result:?}");
            }
        }
    }
    let classifier = combined(0.5);
    let texts = [
        "包裹在路上",
        "包裹在路上 快递",
        "包裹在路上 快递没送到",
        "包裹在路上 快递没送到 late delivery",
    ];
    let confidences: Vec<f64> = texts
        .iter()
        .map(|t| classifier.classify(&text(t)).confidence)
        .collect();
    assert!(
        confidences.windows(2).all(|w| w[0] < w[1]),
        "{confidences:?}"
    );
    // Rival keywords lower it.
    let rival = classifier.classify(&text("包裹在路上 快递没送到 late delivery 多收 收费"));
    assert!(rival.confidence < confidences[3], "{rival:?}");
}

#[test]
fn the_combination_never_leaves_the_taxonomy() {
    let classifier = combined(1.0);
    let codes = classifier.codes().to_vec();
    for complaint in [
        "",
        "柜员翻白眼",
        "random words nobody trained",
        "包裹 账单 clerk 建议 refund",
        "😡",
    ] {
        let result = classifier.classify(&text(complaint));
        assert!(
            result.category == TRIAGE || codes.contains(&result.category),
            "{result:?}"
        );
        for (code, _) in &result.scores {
            assert!(codes.contains(code), "{result:?}");
        }
    }
    // A model trained on a category the taxonomy lacks is refused…
    let stray = NaiveBayes::train(
        &[sample("x", "lift broken", "facilities_environment")],
        &Options::default(),
    )
    .expect("trains");
    let error =
        Classifier::with_model(&small_taxonomy(), 0.2, stray, 0.5).expect_err("unknown category");
    assert!(error.contains("facilities_environment"), "{error}");
    // …and so is training data with such a label, naming the sample.
    let mut samples = tiny_set();
    samples.push(sample("bad-7", "lift broken", "facilities"));
    let error =
        Classifier::with_training(&small_taxonomy(), 0.2, &samples).expect_err("unknown category");
    assert!(
        error.contains("bad-7") && error.contains("facilities"),
        "{error}"
    );
    for weight in [-0.1, f64::NAN, f64::INFINITY] {
        assert!(
            Classifier::with_model(&small_taxonomy(), 0.2, tiny_model(), weight).is_err(),
            "{weight}"
        );
    }
}

#[test]
fn with_a_model_empty_input_still_goes_to_triage_with_confidence_zero() {
    let classifier = combined(0.5);
    for input in ["", "😡😡😡", "unicorn rainbow"] {
        let result = classifier.classify(&text(input));
        assert_eq!(result.category, TRIAGE, "{input:?}");
        assert!(result.triage);
        assert_eq!(result.confidence, 0.0);
        assert!(result.terms.is_empty());
    }
}

#[test]
fn a_category_the_model_has_not_seen_wins_on_its_keywords_without_a_model_vote() {
    // The model knows logistics, price and attitude, and has an opinion on
    // this complaint (包裹: logistics); `other` is reached through its
    // keyword, and the model explains nothing for it.
    let classifier = combined(0.8);
    let model_view = classifier
        .model()
        .expect("a model")
        .predict(&text("建议包裹"));
    assert_eq!(model_view[0].0, "logistics");
    assert!(!model_view.iter().any(|(c, _)| c == "other"));
    let result = classifier.classify(&text("建议包裹"));
    assert_eq!(result.category, "other", "{result:?}");
    assert_eq!(result.terms, ["建议"]);
}

// ---------------------------------------------- classifier_training in a policy

const TRAINED_POLICY: &str = r#"name = "trained"
triage_department = "service"
classifier_training = "data/train.jsonl"

[departments.service]
name = "客服中心"
[departments.logistics]
name = "物流部"

[[taxonomy]]
code = "logistics"
name = "物流"
department = "logistics"
keywords = { "快递" = 2.0 }

[[taxonomy]]
code = "other"
name = "其他"
keywords = { "建议" = 1.0 }

[sla.resolution]
default = { urgent = "24h", expedited = "3wd", normal = "5wd" }
"#;

const TRAIN_LINES: &str = concat!(
    r#"{"id":"t1","text":"包裹还在路上","category":"logistics"}"#,
    "\n",
    r#"{"id":"t2","text":"希望增加营业时间","category":"other"}"#,
    "\n",
);

/// A policy directory with `policy.toml` and, if given, `data/train.jsonl`.
fn policy_dir(name: &str, policy: &str, training: Option<&[u8]>) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tousu-classify-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).expect("temp dir");
    std::fs::write(dir.join("policy.toml"), policy).expect("write policy");
    if let Some(bytes) = training {
        std::fs::write(dir.join("data/train.jsonl"), bytes).expect("write training");
    }
    dir
}

fn load_errors(dir: &std::path::Path) -> Vec<Diagnostic> {
    match Policy::load(&dir.join("policy.toml")) {
        Ok((_, warnings)) => panic!("should fail; warnings {warnings:?}"),
        Err(diagnostics) => diagnostics,
    }
}

#[test]
fn a_policy_with_training_data_loads_it_and_versions_it() {
    let dir = policy_dir("ok", TRAINED_POLICY, Some(TRAIN_LINES.as_bytes()));
    let (policy, warnings) = Policy::load(&dir.join("policy.toml")).expect("loads");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        policy.classifier_training_file.as_deref(),
        Some("data/train.jsonl")
    );
    let ids: Vec<&str> = policy
        .classifier_training
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(ids, ["t1", "t2"]);
    let classifier = Classifier::with_training(
        &policy.taxonomy,
        policy.classify_threshold,
        &policy.classifier_training,
    )
    .expect("trains");
    assert!(classifier.model().is_some());

    // Changing the training data changes the version; the policy text
    // alone (no directory to read the file from) has yet another.
    let first = policy.version.clone();
    std::fs::write(
        dir.join("data/train.jsonl"),
        format!(
            "{TRAIN_LINES}{}\n",
            r#"{"id":"t3","text":"快递","category":"logistics"}"#
        ),
    )
    .expect("write");
    let (changed, _) = Policy::load(&dir.join("policy.toml")).expect("loads");
    assert_ne!(changed.version, first);
    let (text_only, warnings) = Policy::from_toml(TRAINED_POLICY, "p.toml").expect("loads");
    assert_ne!(text_only.version, first);
    assert!(text_only.classifier_training.is_empty());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(
        (warnings[0].line, warnings[0].severity),
        (3, Severity::Warning)
    );
    assert!(
        warnings[0].message.contains("keywords only"),
        "{}",
        warnings[0]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_training_file_is_reported_at_the_key() {
    let dir = policy_dir("missing", TRAINED_POLICY, None);
    let errors = load_errors(&dir);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert!(e.file.ends_with("policy.toml"), "{e}");
    assert_eq!((e.line, e.column), (3, 23), "{e}");
    assert!(
        e.message.contains("cannot read") && e.message.contains("train.jsonl"),
        "{e}"
    );
    let empty = policy_dir(
        "empty-key",
        &TRAINED_POLICY.replace("data/train.jsonl", " "),
        None,
    );
    let errors = load_errors(&empty);
    assert!(
        errors[0].message.contains("must name a JSONL file"),
        "{errors:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn a_malformed_training_record_is_reported_at_its_line_in_the_training_file() {
    let broken = format!(
        "{TRAIN_LINES}\n{}\n",
        r#"{"id":"t3","text":"x","categroy":"logistics"}"#
    );
    let dir = policy_dir("malformed", TRAINED_POLICY, Some(broken.as_bytes()));
    let errors = load_errors(&dir);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert!(e.file.ends_with("train.jsonl"), "{e}");
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("categroy"), "{e}");
    assert!(e.to_string().contains("train.jsonl:4:"), "{e}");

    for (name, bytes, expected) in [
        ("latin1", b"{\"id\":\"caf\xe9\"}\n".as_slice(), "not UTF-8"),
        ("nothing", b"\n\n".as_slice(), "has no samples"),
    ] {
        let dir = policy_dir(name, TRAINED_POLICY, Some(bytes));
        let errors = load_errors(&dir);
        assert!(
            errors
                .iter()
                .any(|e| e.line == 3 && e.message.contains(expected)),
            "{name}: {errors:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn training_labels_outside_the_taxonomy_are_reported_at_their_lines() {
    let lines = format!(
        "{TRAIN_LINES}{}\n{}\n",
        r#"{"id":"t3","text":"电梯坏了","category":"facilities_environment"}"#,
        r#"{"id":"t4","text":"乱收费","category":"price_billing"}"#
    );
    let dir = policy_dir("labels", TRAINED_POLICY, Some(lines.as_bytes()));
    let errors = load_errors(&dir);
    let found: Vec<(usize, bool)> = errors
        .iter()
        .map(|e| (e.line, e.file.ends_with("train.jsonl")))
        .collect();
    assert_eq!(found, [(3, true), (4, true)], "{errors:?}");
    assert!(
        errors[0].message.contains("`facilities_environment`"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].message.contains("known: logistics, other"),
        "{}",
        errors[0]
    );
    assert!(errors[1].message.contains("\"t4\""), "{}", errors[1]);

    // A training file for another taxonomy altogether: the first 20 lines
    // one by one, then a count at the key.
    let many: String = (0..50)
        .map(|i| format!("{{\"id\":\"m{i}\",\"text\":\"x\",\"category\":\"elsewhere\"}}\n"))
        .collect();
    let dir2 = policy_dir("many-labels", TRAINED_POLICY, Some(many.as_bytes()));
    let errors = load_errors(&dir2);
    assert_eq!(errors.len(), 21, "{errors:?}");
    assert!(errors[0].file.ends_with("policy.toml"), "{}", errors[0]);
    assert!(errors[0].message.contains("50 samples"), "{}", errors[0]);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}
