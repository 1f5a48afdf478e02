//! How many complainants a complaint speaks for (群体投诉): the channel's
//! `group_size` when it carries one (web form, gRPC, connectors), else what
//! the text says — "我们12户业主联名投诉", "三位业主一起来反映", "signed by
//! 15 residents". Grading rules compare it with their thresholds (property:
//! ≥ 3 热点, ≥ 10 重大); a number only counts next to a word for people and a
//! word for acting together, so "我家3个人" stays a complaint of one.

use tousu_proto::v1 as pb;

/// People words a count may be followed by.
const PEOPLE_ZH: &[&str] = &[
    "业主",
    "居民",
    "住户",
    "用户",
    "客户",
    "消费者",
    "患者",
    "家长",
    "村民",
    "职工",
    "员工",
    "租户",
    "商户",
    "乘客",
    "学生",
    "老人",
    "人",
];
/// Measure words between the count and the people word.
const MEASURES_ZH: &[&str] = &["位", "名", "户", "个", "家"];
/// Words that make it a joint complaint.
const TOGETHER_ZH: &[&str] = &[
    "联名", "集体", "一起", "共同", "联合", "签名", "签字", "都来", "一同",
];
const PEOPLE_EN: &[&str] = &[
    "residents",
    "owners",
    "homeowners",
    "tenants",
    "customers",
    "households",
    "families",
    "patients",
    "parents",
    "passengers",
    "people",
    "neighbours",
    "neighbors",
    "users",
];
const TOGETHER_EN: &[&str] = &["signed", "jointly", "together", "petition", "on behalf of"];

/// The group size of a received complaint (at least 1).
pub fn of(c: &pb::Complaint) -> i64 {
    let declared = c
        .content
        .as_ref()
        .and_then(|x| x.channel_details.get("group_size"))
        .and_then(|g| g.trim().parse::<i64>().ok())
        .filter(|n| (1..=100_000).contains(n));
    let text = c
        .content
        .as_ref()
        .map(|x| format!("{}。{}", x.title, x.description))
        .unwrap_or_default();
    declared.unwrap_or(0).max(from_text(&text)).max(1)
}

/// The largest joint-complaint count the text states, 0 when none.
pub fn from_text(text: &str) -> i64 {
    text.split(['。', '！', '？', '\n', '.', '!', '?', '；', ';'])
        .map(|sentence| zh(sentence).max(en(sentence)))
        .max()
        .unwrap_or(0)
}

fn zh(sentence: &str) -> i64 {
    if !TOGETHER_ZH.iter().any(|w| sentence.contains(w)) {
        return 0;
    }
    let chars: Vec<char> = sentence.chars().collect();
    let mut best = 0;
    let mut i = 0;
    while i < chars.len() {
        let Some((n, len)) = number_at(&chars[i..]) else {
            i += 1;
            continue;
        };
        // An ordinal (第5位) counts nobody.
        if i > 0 && chars[i - 1] == '第' {
            i += len;
            continue;
        }
        let rest: String = chars[i + len..].iter().take(8).collect();
        let rest = rest.trim_start();
        let rest = rest
            .strip_prefix("多")
            .or_else(|| rest.strip_prefix("余"))
            .unwrap_or(rest);
        let after_measure = MEASURES_ZH
            .iter()
            .find_map(|m| rest.strip_prefix(m))
            .unwrap_or(rest);
        if PEOPLE_ZH.iter().any(|p| after_measure.starts_with(p)) {
            best = best.max(n);
        }
        i += len;
    }
    best
}

fn en(sentence: &str) -> i64 {
    let lower = sentence.to_lowercase();
    if !TOGETHER_EN.iter().any(|w| lower.contains(w)) {
        return 0;
    }
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut best = 0;
    for (i, w) in words.iter().enumerate() {
        let Some(n) = w.parse::<i64>().ok().or_else(|| english_number(w)) else {
            continue;
        };
        let next = words.get(i + 1).copied().unwrap_or("");
        let after = words.get(i + 2).copied().unwrap_or("");
        if PEOPLE_EN.contains(&next) || (next == "of" && PEOPLE_EN.contains(&after)) {
            best = best.max(n);
        }
    }
    best.min(100_000)
}

fn english_number(w: &str) -> Option<i64> {
    const WORDS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    WORDS.iter().position(|x| *x == w).map(|n| n as i64)
}

/// A number at the start of `chars` — ASCII/full-width digits or Chinese
/// numerals up to 9999 (十二, 二十, 三十五, 一百) — and its length in chars.
fn number_at(chars: &[char]) -> Option<(i64, usize)> {
    let digit = |c: char| match c {
        '0'..='9' => Some(c as i64 - '0' as i64),
        '０'..='９' => Some(c as i64 - '０' as i64),
        _ => None,
    };
    if digit(chars[0]).is_some() {
        let mut n: i64 = 0;
        let mut len = 0;
        for &c in chars {
            match digit(c) {
                Some(d) if n < 1_000_000 => {
                    n = n * 10 + d;
                    len += 1;
                }
                _ => break,
            }
        }
        return Some((n.min(100_000), len));
    }
    let zh_digit = |c: char| "零一二两三四五六七八九".chars().position(|d| d == c);
    let mut total = 0i64;
    let mut current = 0i64;
    let mut len = 0;
    for &c in chars {
        if let Some(d) = zh_digit(c) {
            // 两 is 2 (index 3 of the list shares 2 with 二).
            current = match d {
                3 => 2,
                d if d > 3 => d as i64 - 1,
                d => d as i64,
            };
        } else if let Some(unit) = match c {
            '十' => Some(10),
            '百' => Some(100),
            '千' => Some(1000),
            _ => None,
        } {
            total += current.max(1) * unit;
            current = 0;
        } else {
            break;
        }
        len += 1;
    }
    let n = total + current;
    (len > 0 && n > 0).then_some((n, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joint_complaints_state_their_size() {
        assert_eq!(from_text("我们12户业主联名投诉物业乱收费"), 12);
        assert_eq!(from_text("三位业主一起来反映电梯问题"), 3);
        assert_eq!(from_text("共有二十多名住户签名要求更换物业"), 20);
        assert_eq!(from_text("十户居民集体投诉噪音"), 10);
        assert_eq!(from_text("两名家长共同反映食堂卫生"), 2);
        assert_eq!(from_text("１５位业主联名"), 15);
        assert_eq!(from_text("This petition is signed by 15 residents."), 15);
        assert_eq!(
            from_text("Twelve households jointly complain about the lift."),
            12
        );
    }

    #[test]
    fn counts_without_acting_together_do_not_make_a_group() {
        assert_eq!(from_text("我家3个人都食物中毒了"), 0);
        assert_eq!(from_text("等了3个小时，一起吃饭的朋友也走了"), 0);
        assert_eq!(from_text("快递三天没到"), 0);
        assert_eq!(
            from_text("I waited 3 hours for 2 customers service agents."),
            0
        );
        assert_eq!(from_text("第5位业主的车被刮了，我们一起投诉"), 0);
        assert_eq!(from_text("第3次投诉，这次我们10户业主一起来"), 10);
    }

    #[test]
    fn the_channel_count_and_the_text_count_take_the_larger() {
        let mut c = pb::Complaint {
            content: Some(pb::Content {
                description: "三位业主联名投诉".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(of(&c), 3);
        c.content
            .as_mut()
            .unwrap()
            .channel_details
            .insert("group_size".into(), "11".into());
        assert_eq!(of(&c), 11);
        c.content
            .as_mut()
            .unwrap()
            .channel_details
            .insert("group_size".into(), "lots".into());
        assert_eq!(of(&c), 3);
        assert_eq!(of(&pb::Complaint::default()), 1);
    }
}
