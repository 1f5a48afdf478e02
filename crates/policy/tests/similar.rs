//! Near-duplicates, identity links and the grading facts derived from them.

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tousu_policy::similar::{
    Config, DEFAULT_MAX_DISTANCE, DEFAULT_REPEAT_MAX_DISTANCE, EMPTY_FINGERPRINT, Entry, Index,
    Match, Query, distance, distinct_complainants, fingerprint,
};
use tousu_policy::text::tokens;

fn fp(text: &str) -> u64 {
    fingerprint(&tokens(text))
}

fn t0() -> OffsetDateTime {
    datetime!(2025-03-01 09:00 +08:00)
}

fn entry(id: &str, at: OffsetDateTime, keys: &[&str], text: &str) -> Entry {
    Entry {
        id: id.to_string(),
        at,
        identity_keys: keys.iter().map(|k| k.to_string()).collect(),
        fingerprint: fp(text),
        category: String::new(),
        product: String::new(),
        location: String::new(),
    }
}

fn with(mut e: Entry, category: &str, product: &str, location: &str) -> Entry {
    e.category = category.to_string();
    e.product = product.to_string();
    e.location = location.to_string();
    e
}

fn query<'a>(e: &'a Entry, window: Duration, max_distance: u32, context: bool) -> Query<'a> {
    Query {
        id: Some(&e.id),
        fingerprint: e.fingerprint,
        category: &e.category,
        product: &e.product,
        location: &e.location,
        at: e.at,
        window,
        max_distance,
        context,
        limit: usize::MAX,
    }
}

fn ids(matches: &[Match]) -> Vec<&str> {
    matches.iter().map(|m| m.id.as_str()).collect()
}

// ---------------------------------------------------------------------------
// Fingerprints
// ---------------------------------------------------------------------------

#[test]
fn fingerprint_is_pinned_because_it_is_stored() {
    let toks: Vec<String> = ["3号楼", "电梯", "坏", "困", "老人"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // Any change here invalidates stored fingerprints: bump
    // FINGERPRINT_VERSION and migrate instead of editing this value.
    assert_eq!(fingerprint(&toks), 0x4381_9ce9_2abc_04c6);
    assert_eq!(fingerprint(&toks), fingerprint(&toks.clone()));
}

#[test]
fn empty_and_contentless_texts_have_the_empty_fingerprint() {
    assert_eq!(fingerprint(&[]), EMPTY_FINGERPRINT);
    let junk: Vec<String> = ["，", "！！", " ", "的", "了", "The", "is"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(fingerprint(&junk), EMPTY_FINGERPRINT);
    assert_eq!(fp("？？？……"), EMPTY_FINGERPRINT);
    assert_ne!(fp("电梯坏了"), EMPTY_FINGERPRINT);
}

#[test]
fn ascii_case_and_punctuation_do_not_change_the_fingerprint() {
    let upper: Vec<String> = ["Parcel", "LOST", "Leeds", "depot"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let lower: Vec<String> = ["parcel", "lost", "leeds", "depot"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(fingerprint(&upper), fingerprint(&lower));
    assert_eq!(
        fp("快递在广州白云分拨中心停了五天，没有任何物流更新！"),
        fp("快递在广州白云分拨中心停了五天 没有任何物流更新。")
    );
}

#[test]
fn only_the_first_tokens_of_a_huge_text_count() {
    use tousu_policy::similar::MAX_FINGERPRINT_TOKENS;
    let long: Vec<String> = (0..MAX_FINGERPRINT_TOKENS)
        .map(|i| format!("词{i}"))
        .collect();
    let mut longer = long.clone();
    longer.extend((0..10_000).map(|i| format!("尾{i}")));
    assert_eq!(fingerprint(&long), fingerprint(&longer));
    // Tokens within the limit still count.
    let mut changed = long.clone();
    for t in changed.iter_mut().take(MAX_FINGERPRINT_TOKENS / 2) {
        *t = format!("换{t}");
    }
    assert_ne!(fingerprint(&long), fingerprint(&changed));
}

#[test]
fn light_edits_are_near_duplicates() {
    let pairs = [
        (
            "3号楼的电梯又坏了，今天早上困了两个老人半个小时，物业到现在都没人来修，太危险了！",
            "您好，3号楼的电梯又坏了，今天早上困了两个老人半个小时，物业到现在都没人来修，太危险了！",
        ),
        (
            "买的X20手机用了不到两个月电池就鼓包了，后盖都被顶起来了，担心会爆炸。",
            "买的X20手机用了不到两个月电池就鼓包了，后盖都被顶起来了，担心会爆炸！！",
        ),
        (
            "I cancelled my StreamPlus subscription in March but I was still charged $14.99 in April and May.",
            "Hello, I cancelled my StreamPlus subscription in March but I was still charged $14.99 in April and May.",
        ),
    ];
    for (a, b) in pairs {
        let d = distance(fp(a), fp(b));
        assert!(d <= DEFAULT_MAX_DISTANCE, "{d} for {a:?} / {b:?}");
    }
}

#[test]
fn rewordings_of_one_person_fall_within_the_repeat_distance() {
    let pairs = [
        (
            "买的X20手机用了不到两个月电池就鼓包了，后盖都被顶起来了，担心会爆炸。",
            "我买的X20手机用了不到两个月电池就鼓包，后盖都被顶起来了，很担心会爆炸，要求退货。",
        ),
        (
            "酒店前台说我的预订不存在，让我在大厅等了两个小时，最后还加价才给房间。",
            "酒店前台说预订不存在，让我在大厅等了两个多小时，最后还要加价才给安排房间，太过分了。",
        ),
        (
            "客服热线打了二十多次都没人接，好不容易接通又被转了三次，问题还是没解决。",
            "客服热线打了二十多次没人接，好不容易接通又被转来转去三次，到现在问题还是没解决！",
        ),
        (
            "My refund for the returned blender has not arrived after 21 days.",
            "It has been 21 days and my refund for the returned blender still has not arrived.",
        ),
    ];
    for (a, b) in pairs {
        let d = distance(fp(a), fp(b));
        assert!(d <= DEFAULT_REPEAT_MAX_DISTANCE, "{d} for {a:?} / {b:?}");
    }
}

const UNRELATED: &[&str] = &[
    "3号楼的电梯又坏了，今天早上困了两个老人半个小时，物业到现在都没人来修，太危险了！",
    "买的X20手机用了不到两个月电池就鼓包了，后盖都被顶起来了，担心会爆炸。",
    "信用卡同一笔消费被扣了两次，金额3200元，要求尽快退回多扣的钱。",
    "门诊三楼内科排队挂号等了三个小时还没轮到，叫号系统一直出错。",
    "星河健身中心突然关门，我办的年卡还剩八个月，现在找不到人退钱。",
    "自从在营业厅办理宽带业务，骚扰电话和短信不断，个人信息被泄露，要求查明原因。",
    "七天无理由退货的跑鞋已经寄回去十天了，退款还没到账，客服一直说在审核。",
    "8号楼旁边的工地每天晚上施工到凌晨，噪音大得根本睡不着。",
    "My parcel has been stuck at the Leeds depot for eight days and the tracking hasn't updated.",
    "Your agent hung up on me twice when I asked about my warranty claim.",
];

#[test]
fn unrelated_complaints_are_far_apart() {
    for (i, a) in UNRELATED.iter().enumerate() {
        for b in &UNRELATED[i + 1..] {
            let d = distance(fp(a), fp(b));
            assert!(
                d > DEFAULT_REPEAT_MAX_DISTANCE,
                "{d} for unrelated {a:?} / {b:?}"
            );
        }
    }
}

#[test]
fn the_same_issue_in_other_words_is_not_a_text_near_duplicate() {
    // Why the index also matches on category + place: SimHash alone cannot
    // tell these apart from unrelated complaints.
    let a = fp("3号楼的电梯又坏了，今天早上困了两个老人半个小时，物业到现在都没人来修，太危险了！");
    let b =
        fp("我住3栋，电梯这个月已经停了三次，每次报修物业都说在等配件，我们高层住户天天爬楼梯。");
    assert!(distance(a, b) > DEFAULT_REPEAT_MAX_DISTANCE);
}

// ---------------------------------------------------------------------------
// Block-table lookup = brute force
// ---------------------------------------------------------------------------

/// SplitMix64: a seeded, dependency-free generator for property tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// `base` with `k` distinct random bits flipped.
    fn flip(&mut self, base: u64, k: u32) -> u64 {
        let mut out = base;
        let mut flipped = 0;
        while flipped < k {
            let bit = 1u64 << self.below(64);
            if (out ^ base) & bit == 0 {
                out ^= bit;
                flipped += 1;
            }
        }
        out
    }
}

#[test]
fn block_lookup_finds_exactly_what_a_scan_finds() {
    let mut rng = Rng(0x5eed_2025);
    for blocks in [4u32, 5, 6, 7, 9, 16] {
        let mut index = Index::with_blocks(Config::default(), blocks);
        let mut live: Vec<(String, u64)> = Vec::new();
        let centres: Vec<u64> = (0..12).map(|_| rng.next()).collect();
        for i in 0..600 {
            // Clusters around a few centres, so every distance occurs.
            let centre = centres[rng.below(centres.len() as u64) as usize];
            let f = match rng.below(10) {
                0 => rng.next(),
                1 => EMPTY_FINGERPRINT,
                _ => {
                    let k = rng.below(20) as u32;
                    rng.flip(centre, k)
                }
            };
            let id = format!("c{i}");
            let mut e = entry(&id, t0() + Duration::minutes(i), &[], "");
            e.fingerprint = f;
            index.insert(e);
            live.push((id, f));
            // Churn: removals and re-inserts must keep the tables exact.
            if rng.below(7) == 0 && !live.is_empty() {
                let (gone, _) = live.swap_remove(rng.below(live.len() as u64) as usize);
                assert!(index.remove(&gone));
            }
        }
        assert_eq!(index.len(), live.len());
        for _ in 0..150 {
            let centre = centres[rng.below(centres.len() as u64) as usize];
            let k = rng.below(12) as u32;
            let q = rng.flip(centre, k);
            for d in [0u32, 1, 3, 4, 5, 7, 8, 9, 11, 14, 15, 20, 64] {
                let found = index.similar(&Query {
                    id: None,
                    fingerprint: q,
                    category: "",
                    product: "",
                    location: "",
                    at: t0(),
                    window: Duration::days(365),
                    max_distance: d,
                    context: false,
                    limit: usize::MAX,
                });
                let mut got: Vec<&str> = ids(&found);
                got.sort_unstable();
                let mut want: Vec<&str> = live
                    .iter()
                    .filter(|(_, f)| *f != EMPTY_FINGERPRINT && distance(*f, q) <= d)
                    .map(|(id, _)| id.as_str())
                    .collect();
                want.sort_unstable();
                assert_eq!(got, want, "blocks={blocks} d={d}");
                assert!(found.iter().all(|m| m.distance <= d && m.near_duplicate));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Windows and eviction
// ---------------------------------------------------------------------------

#[test]
fn windows_are_inclusive_at_both_edges() {
    let text = "朝阳站的快递员态度恶劣，我问他为什么不送上楼，他直接骂人还挂电话。";
    let window = Duration::days(30);
    let mut index = Index::default();
    index.insert(entry("edge-before", t0() - window, &[], text));
    index.insert(entry(
        "past-before",
        t0() - window - Duration::nanoseconds(1),
        &[],
        text,
    ));
    index.insert(entry("edge-after", t0() + window, &[], text));
    index.insert(entry(
        "past-after",
        t0() + window + Duration::nanoseconds(1),
        &[],
        text,
    ));
    let q = entry("now", t0(), &[], text);
    let found = index.similar(&query(&q, window, DEFAULT_MAX_DISTANCE, false));
    assert_eq!(ids(&found), ["edge-before", "edge-after"]);
}

#[test]
fn evict_before_keeps_the_boundary_and_cleans_every_table() {
    let text = "锦绣花园小区从昨天下午开始停水，物业没有提前通知，家里老人孩子没水用。";
    let keys = ["phone:+8613800138000"];
    let mut index = Index::default();
    let old = with(
        entry("old", t0() - Duration::nanoseconds(1), &keys, text),
        "facilities_environment",
        "",
        "锦绣花园",
    );
    let edge = with(
        entry("edge", t0(), &keys, text),
        "facilities_environment",
        "",
        "锦绣花园",
    );
    index.insert(old);
    index.insert(edge);
    assert_eq!(index.evict_before(t0()), 1);
    assert_eq!(index.len(), 1);
    assert!(!index.contains("old") && index.contains("edge"));
    let later = t0() + Duration::days(1);
    assert_eq!(
        index.same_person(&[keys[0].to_string()], later, Duration::days(30)),
        ["edge"]
    );
    assert_eq!(index.evict_before(later), 1);
    assert!(index.is_empty());
    // Nothing is left behind in the text, person or context tables.
    let q = with(
        entry("q", later, &keys, text),
        "facilities_environment",
        "",
        "锦绣花园",
    );
    assert!(
        index
            .similar(&query(&q, Duration::days(30), 64, true))
            .is_empty()
    );
    assert!(
        index
            .same_person(&[keys[0].to_string()], later, Duration::days(30))
            .is_empty()
    );
    let nothing = index.assess(&q);
    assert_eq!(nothing.similar_complainants, 1, "only the complainant");
    assert_eq!(
        (
            nothing.similar_count,
            nothing.same_person_count,
            nothing.repeat_count
        ),
        (0, 0, 0)
    );
    assert!(nothing.linked.is_empty());
    // And the index is usable again.
    index.insert(q.clone());
    assert_eq!(index.len(), 1);
    assert_eq!(index.evict_before(t0()), 0);
}

#[test]
fn inserting_an_id_again_replaces_the_entry() {
    let mut index = Index::default();
    let a = with(
        entry("c1", t0(), &["phone:+8613800138000"], "空调不制冷"),
        "product_quality",
        "空调KFR-35",
        "",
    );
    index.insert(a.clone());
    let mut moved = with(a, "refund_aftersales", "空调KFR-35", "");
    moved.identity_keys = vec!["email:wang@example.com".into()];
    index.insert(moved);
    assert_eq!(index.len(), 1);
    let day = Duration::days(1);
    assert!(
        index
            .same_person(&["phone:+8613800138000".into()], t0(), day)
            .is_empty()
    );
    assert_eq!(
        index.same_person(&["email:wang@example.com".into()], t0(), day),
        ["c1"]
    );
    let q = with(
        entry("c2", t0(), &[], "空调坏了"),
        "product_quality",
        "空调KFR-35",
        "",
    );
    assert!(index.similar(&query(&q, day, 0, true)).is_empty());
}

// ---------------------------------------------------------------------------
// People
// ---------------------------------------------------------------------------

const ELEVATOR: &str = "3号楼电梯又坏了，困了两个老人半个小时，物业一直没人来修。";

#[test]
fn one_person_across_web_phone_and_email_counts_once() {
    let phone = "phone:+8613800138000";
    let email = "email:li.ming@example.com";
    let mut index = Index::default();
    // Web form with phone and email, a call from the same phone, an email.
    index.insert(entry("web", t0(), &[phone, email], ELEVATOR));
    index.insert(entry("call", t0() + Duration::hours(2), &[phone], ELEVATOR));
    index.insert(entry("mail", t0() + Duration::hours(5), &[email], ELEVATOR));
    // A neighbour through WeChat.
    index.insert(entry(
        "neighbour",
        t0() + Duration::hours(6),
        &["wechat:oXk2_9fQ1"],
        ELEVATOR,
    ));
    let q = entry("q", t0() + Duration::days(1), &[], ELEVATOR);
    let found = index.similar(&query(&q, Duration::days(30), DEFAULT_MAX_DISTANCE, false));
    assert_eq!(found.len(), 4);
    assert_eq!(distinct_complainants(&found), 2);
    // Only the call and the email, which share no key, are still one person
    // once the web form links them.
    let pair: Vec<Match> = found
        .iter()
        .filter(|m| m.id == "call" || m.id == "mail")
        .cloned()
        .collect();
    assert_eq!(distinct_complainants(&pair), 2);
    // The same person is followed across keys.
    assert_eq!(
        index.same_person(&[email.to_string()], t0(), Duration::days(30)),
        ["web", "call", "mail"]
    );
}

#[test]
fn anonymous_complaints_count_one_each() {
    let mut index = Index::default();
    index.insert(entry("anon-1", t0(), &[], ELEVATOR));
    index.insert(entry("anon-2", t0() + Duration::hours(1), &[], ELEVATOR));
    index.insert(entry(
        "blank-keys",
        t0() + Duration::hours(2),
        &["", "  ", "phone:", "email: "],
        ELEVATOR,
    ));
    let q = entry("q", t0() + Duration::hours(3), &[], ELEVATOR);
    let found = index.similar(&query(&q, Duration::days(30), DEFAULT_MAX_DISTANCE, false));
    assert_eq!(found.len(), 3);
    assert!(
        found
            .iter()
            .find(|m| m.id == "blank-keys")
            .is_some_and(|m| m.identity_keys.is_empty())
    );
    assert_eq!(distinct_complainants(&found), 3);
    assert_eq!(distinct_complainants(&[]), 0);
    // The assessed complaint is one more person.
    assert_eq!(index.assess(&q).similar_complainants, 4);
}

// ---------------------------------------------------------------------------
// Grading facts
// ---------------------------------------------------------------------------

fn owner(id: &str, at: OffsetDateTime, phone: &str, text: &str, building: &str) -> Entry {
    with(
        entry(id, at, &[phone], text),
        "facilities_environment",
        "",
        building,
    )
}

#[test]
fn three_owners_on_one_issue_in_their_own_words_make_three_complainants() {
    let mut index = Index::default();
    index.insert(owner(
        "a",
        t0(),
        "phone:+8613800000001",
        "3号楼的电梯又坏了，今天早上困了两个老人半个小时，物业到现在都没人来修，太危险了！",
        "3号楼",
    ));
    index.insert(owner(
        "b",
        t0() + Duration::days(3),
        "phone:+8613800000002",
        "我住3栋，电梯这个月已经停了三次，每次报修物业都说在等配件，我们高层住户天天爬楼梯。",
        "3号楼",
    ));
    // Same words, other building: another issue.
    index.insert(owner(
        "other-building",
        t0() + Duration::days(4),
        "phone:+8613800000009",
        "5号楼的电梯又坏了，今天早上困了两个老人半个小时，物业到现在都没人来修，太危险了！",
        "5号楼",
    ));
    // Same building, other category: another issue.
    index.insert(with(
        entry(
            "other-category",
            t0() + Duration::days(5),
            &["phone:+8613800000008"],
            "3号楼物业费今年涨了三成，没有开业主大会。",
        ),
        "price_billing",
        "",
        "3号楼",
    ));
    let third = owner(
        "c",
        t0() + Duration::days(20),
        "phone:+8613800000003",
        "投诉3号楼电梯故障，报修一周没人处理，家里有孕妇上下楼非常不方便。",
        "3号楼",
    );
    let found = index.similar(&Query::new(&third, index.config()));
    assert_eq!(ids(&found), ["a", "b"]);
    assert!(found.iter().all(|m| m.same_context && !m.near_duplicate));
    assert_eq!(distinct_complainants(&found), 2);
    let a = index.assess(&third);
    assert_eq!(a.similar_complainants, 3);
    assert_eq!(a.similar_count, 2);
    assert_eq!(a.repeat_count, 0);
    assert_eq!(a.linked, ["b", "a"]);
    assert!(!a.saturated);

    // Without the context rule only the words count, and they differ.
    let strict = Index::new(Config {
        context: false,
        ..Config::default()
    });
    assert_eq!(strict.assess(&third).similar_complainants, 1);

    // 31 days after the first, it has left the window.
    let late = owner(
        "late",
        t0() + Duration::days(31),
        "phone:+8613800000004",
        "3号楼电梯还是坏的。",
        "3号楼",
    );
    assert_eq!(index.assess(&late).similar_complainants, 2);
}

#[test]
fn a_text_near_duplicate_needs_a_compatible_category() {
    let mut index = Index::default();
    let text = "收到的电热水器漏电，洗澡的时候被电了一下，太危险了！";
    index.insert(with(
        entry("quality", t0(), &["phone:+8613800000001"], text),
        "product_quality",
        "",
        "",
    ));
    index.insert(entry(
        "uncategorized",
        t0(),
        &["phone:+8613800000002"],
        text,
    ));
    let q = with(
        entry("q", t0(), &["phone:+8613800000003"], text),
        "facilities_environment",
        "",
        "",
    );
    let found = index.similar(&query(&q, Duration::days(1), DEFAULT_MAX_DISTANCE, true));
    assert_eq!(ids(&found), ["uncategorized"]);
}

#[test]
fn repeats_are_earlier_complaints_of_the_same_person_on_the_same_issue() {
    let phone = "phone:+8613912345678";
    let wechat = "wechat:oPz81kLm";
    let mut index = Index::default();
    // Reworded re-send through another channel that carries the phone too.
    index.insert(with(
        entry(
            "first",
            t0(),
            &[phone],
            "客服热线打了二十多次都没人接，好不容易接通又被转了三次，问题还是没解决。",
        ),
        "service_efficiency",
        "",
        "",
    ));
    // Same person, same category and product, different words.
    index.insert(with(
        entry(
            "fridge-1",
            t0() + Duration::days(1),
            &[wechat, phone],
            "冰箱不制冷，里面的菜都坏了。",
        ),
        "product_quality",
        "BCD-470",
        "",
    ));
    // Same person, another issue.
    index.insert(with(
        entry(
            "parking",
            t0() + Duration::days(2),
            &[phone],
            "万达广场停车场收费标准写的是每小时5元，结果我停了两小时收了30元。",
        ),
        "price_billing",
        "",
        "万达广场停车场",
    ));
    // Another person, same issue.
    index.insert(with(
        entry(
            "stranger",
            t0() + Duration::days(2),
            &["phone:+8613000000000"],
            "冰箱不制冷，里面的菜都坏了。",
        ),
        "product_quality",
        "BCD-470",
        "",
    ));
    // Later than the assessed complaint: not a repeat of it.
    index.insert(with(
        entry(
            "later",
            t0() + Duration::days(9),
            &[phone],
            "冰箱还是不制冷。",
        ),
        "product_quality",
        "BCD-470",
        "",
    ));

    let resend = with(
        entry(
            "resend",
            t0() + Duration::days(5),
            &[wechat],
            "客服热线打了二十多次没人接，好不容易接通又被转来转去三次，到现在问题还是没解决！",
        ),
        "service_efficiency",
        "",
        "",
    );
    let a = index.assess(&resend);
    assert_eq!(a.repeat_count, 1, "{a:?}");
    assert_eq!(a.same_person_count, 4);

    let fridge = with(
        entry(
            "fridge-2",
            t0() + Duration::days(6),
            &[phone],
            "我家BCD-470冰箱冷藏室完全不制冷了，售后一直不上门。",
        ),
        "product_quality",
        "BCD-470",
        "",
    );
    let a = index.assess(&fridge);
    assert_eq!(a.repeat_count, 1, "{a:?}");
    // The stranger is the same issue but not a repeat.
    assert_eq!(a.similar_complainants, 2);

    // Outside the repeat window nothing repeats.
    let mut short = Index::new(Config {
        repeat_window: Duration::days(3),
        ..Config::default()
    });
    short.insert(with(
        entry("old-fridge", t0(), &[phone], "冰箱不制冷，里面的菜都坏了。"),
        "product_quality",
        "BCD-470",
        "",
    ));
    assert_eq!(short.assess(&fridge).repeat_count, 0);
    short.insert(with(
        entry(
            "recent-fridge",
            t0() + Duration::days(3),
            &[phone],
            "冰箱不制冷，里面的菜都坏了。",
        ),
        "product_quality",
        "BCD-470",
        "",
    ));
    assert_eq!(short.assess(&fridge).repeat_count, 1);
}

#[test]
fn a_heavy_rewording_is_still_a_repeat_through_category_and_product() {
    let phone = "phone:+8613700001111";
    let first = "我在贵店买的羽绒服洗了一次就严重掉毛，要求退货被拒绝。";
    let again = "在你们店买的羽绒服只洗了一次就严重掉毛，申请退货却被拒绝了。";
    // Too far apart for the text rule alone...
    assert!(distance(fp(first), fp(again)) > DEFAULT_REPEAT_MAX_DISTANCE);
    let mut bare = Index::default();
    bare.insert(entry("first", t0(), &[phone], first));
    let q = entry("again", t0() + Duration::days(4), &[phone], again);
    assert_eq!(bare.assess(&q).repeat_count, 0);
    // ...but the same category and product make it the same issue.
    let mut index = Index::default();
    index.insert(with(
        entry("first", t0(), &[phone], first),
        "refund_aftersales",
        "羽绒服D2301",
        "",
    ));
    let q = with(q, "refund_aftersales", "羽绒服D2301", "");
    assert_eq!(index.assess(&q).repeat_count, 1);
}

#[test]
fn a_conflicting_product_or_place_vetoes_even_identical_words() {
    let phone = "phone:+8613912345678";
    let mut index = Index::default();
    let text = "空调不制冷，报修三次都没修好。";
    index.insert(with(
        entry("ac-a", t0(), &[phone], text),
        "product_quality",
        "KFR-35GW",
        "",
    ));
    let other_model = with(
        entry("ac-b", t0() + Duration::days(1), &[phone], text),
        "product_quality",
        "KFR-72LW",
        "",
    );
    let a = index.assess(&other_model);
    assert_eq!(a.repeat_count, 0);
    assert_eq!(a.similar_count, 0);
    // Still the same person, so still linked.
    assert_eq!(a.same_person_count, 1);
    assert_eq!(a.linked, ["ac-a"]);
}

#[test]
fn linked_cases_are_listed_on_each_other() {
    let mut index = Index::default();
    let phone = "phone:+8613800138000";
    index.insert(owner("a", t0(), phone, ELEVATOR, "3号楼"));
    index.insert(owner(
        "b",
        t0() + Duration::days(1),
        "phone:+8613800000002",
        "您好，3号楼电梯又坏了，困了两个老人半个小时，物业一直没人来修。",
        "",
    ));
    index.insert(with(
        entry(
            "c",
            t0() + Duration::days(2),
            &[phone],
            "物业费发票开错了，要求重新开具。",
        ),
        "price_billing",
        "",
        "",
    ));
    index.insert(entry(
        "unrelated",
        t0() + Duration::days(2),
        &["email:x@example.com"],
        "The delivery driver left my parcel in the rain.",
    ));
    assert_eq!(index.linked("a"), ["c", "b"]);
    assert_eq!(index.linked("b"), ["a"]);
    assert_eq!(index.linked("c"), ["a"]);
    assert!(index.linked("unrelated").is_empty());
    assert!(index.linked("no-such-id").is_empty());
}

#[test]
fn a_hot_topic_is_capped_and_says_so() {
    let mut index = Index::new(Config {
        max_matches: 10,
        max_links: 4,
        ..Config::default()
    });
    for i in 0..40 {
        index.insert(owner(
            &format!("c{i:02}"),
            t0() + Duration::minutes(i),
            &format!("phone:+86138000{i:05}"),
            "8号楼旁边的工地每天晚上施工到凌晨，噪音大得根本睡不着。",
            "8号楼",
        ));
    }
    let q = owner(
        "q",
        t0() + Duration::hours(2),
        "phone:+8613999999999",
        "夜里十二点还在打桩，8号楼的住户已经连续一周失眠了。",
        "8号楼",
    );
    let a = index.assess(&q);
    assert!(a.saturated);
    assert!(a.similar_complainants >= 11, "{a:?}");
    assert_eq!(a.linked, ["c39", "c38", "c37", "c36"]);
    assert!(a.linked_total >= 10);
    // The raw lookup can ask for everything.
    let all = index.similar(&query(&q, Duration::days(30), DEFAULT_MAX_DISTANCE, true));
    assert_eq!(all.len(), 40);
    assert_eq!(distinct_complainants(&all), 40);
}

#[test]
fn a_complaint_in_the_index_never_counts_itself() {
    let mut index = Index::default();
    let e = owner("self", t0(), "phone:+8613800000001", ELEVATOR, "3号楼");
    index.insert(e.clone());
    let a = index.assess(&e);
    assert_eq!(a.similar_complainants, 1);
    assert_eq!(a.repeat_count, 0);
    assert_eq!(a.same_person_count, 0);
    assert!(a.linked.is_empty());
    assert!(index.linked("self").is_empty());
}

// ---------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------

#[test]
fn extreme_times_windows_and_distances_do_not_panic() {
    let mut index = Index::default();
    let far_past = datetime!(-9999-01-01 0:00 UTC);
    let far_future = datetime!(9999-12-31 23:59:59.999_999_999 -23:59:59);
    index.insert(entry("past", far_past, &["phone:+1"], ELEVATOR));
    index.insert(entry("future", far_future, &["phone:+1"], ELEVATOR));
    let q = entry("q", t0(), &["phone:+1"], ELEVATOR);
    let everything = index.similar(&query(&q, Duration::MAX, u32::MAX, true));
    assert_eq!(ids(&everything), ["past", "future"]);
    assert!(
        index
            .similar(&query(&q, Duration::MIN, u32::MAX, true))
            .is_empty()
    );
    assert_eq!(
        index.same_person(&["phone:+1".into()], t0(), Duration::MAX),
        ["past", "future"]
    );
    assert!(
        index
            .same_person(&["phone:+1".into()], t0(), -Duration::days(1))
            .is_empty()
    );
    let mut wide = Index::new(Config {
        window: Duration::MAX,
        repeat_window: Duration::MAX,
        max_matches: 0,
        max_links: 0,
        ..Config::default()
    });
    wide.insert(entry("past", far_past, &["phone:+1"], ELEVATOR));
    let a = wide.assess(&q);
    assert_eq!(a.repeat_count, 1);
    assert!(a.linked.is_empty());
    assert_eq!(a.linked_total, 1);
    assert_eq!(index.evict_before(far_future), 1);
    assert_eq!(index.evict_before(far_future), 0);
    assert!(index.contains("future"));
}

#[test]
fn odd_strings_are_just_strings() {
    let mut index = Index::default();
    let weird = with(
        entry(
            "",
            t0(),
            &["phone:+86\u{0}", "  email:a@b  ", "email:a@b"],
            "",
        ),
        " product_quality ",
        "\u{202e}X20",
        "楼\u{fe0f}",
    );
    index.insert(weird.clone());
    assert!(index.contains(""));
    // Keys are trimmed and deduplicated.
    assert_eq!(
        index.same_person(&["email:a@b".into()], t0(), Duration::days(1)),
        [""]
    );
    let q = with(
        entry("q", t0(), &[], ""),
        "product_quality",
        "\u{202e}X20",
        "",
    );
    // An empty text matches nothing by text, but the context still works.
    let found = index.similar(&query(&q, Duration::days(1), 64, true));
    assert_eq!(ids(&found), [""]);
    assert!(found[0].same_context && !found[0].near_duplicate);
    assert!(index.remove(""));
    assert!(!index.remove(""));
}
