//! Grading + routing throughput on one core (`--ignored`, in release):
//! `cargo test --release -p tousu-policy --test schema_speed -- --ignored --nocapture`.

mod profile_support;

use std::time::Instant;

use tousu_policy::cel::Facts;
use tousu_policy::schema::Policy;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn policy_is_shareable_between_threads() {
    assert_send_sync::<Policy>();
    assert_send_sync::<Facts>();
}

#[test]
#[ignore = "a benchmark: run in release with --ignored"]
fn decisions_per_second() {
    let texts = [
        (
            "我上周买的充电宝，昨晚充电时突然爆炸起火，我的手被烫伤了。",
            "product_quality",
        ),
        (
            "快递显示已签收但我没收到包裹，打客服电话也没人接。",
            "logistics",
        ),
        (
            "The laptop screen died three days after delivery and the refund was refused. My lawyer will write.",
            "refund_aftersales",
        ),
        (
            "门店收银员态度很差，问她问题爱答不理的。",
            "service_attitude",
        ),
        (
            "会员卡余额不退，合同上写的服务一项都没兑现，我们12个人联名投诉。",
            "contract_dispute",
        ),
        (
            "账单里多扣了两次月费，一共多收了98元，要求退还并赔偿。",
            "price_billing",
        ),
    ];
    for profile in ["default", "property", "bank", "hospital", "hotline-12345"] {
        let policy = profile_support::profile(profile);
        let facts: Vec<Facts> = texts
            .iter()
            .map(|(t, c)| {
                let mut f = Facts::new("", t);
                f.category = (*c).into();
                f.confidence = 0.8;
                f.group_size = 1 + (t.len() % 12) as i64;
                f
            })
            .collect();
        let n = 60_000;
        let start = Instant::now();
        let mut sum = 0u64;
        for i in 0..n {
            let mut f = facts[i % facts.len()].clone();
            let (g, r) = policy.decide(&mut f);
            sum += u64::from(g.grade.get()) + r.hits.len() as u64;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{profile}: {:.0} decisions/s ({:.1} µs each, grading {} + routing {} rules; checksum {sum})",
            n as f64 / secs,
            secs * 1e6 / n as f64,
            policy.grading.len(),
            policy.routing.len()
        );
    }
}
