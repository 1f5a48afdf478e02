//! Fixture-driven tests of the email channel parser: every `.eml` in
//! `tests/fixtures/email/` (written by `generate.py` there) with what it
//! must turn into.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tousu_channels::email::{self, Email};
use tousu_channels::{Inbound, Invalid};

/// What a fixture that is a complaint must give.
struct Want {
    title: Option<&'static str>,
    name: Option<&'static str>,
    email: &'static str,
    /// `None`: the message has no Message-ID, the id is the raw message's hash.
    message_id: Option<&'static str>,
    /// The whole description, when worth pinning exactly.
    description: Option<&'static str>,
    /// Phrases the description must contain.
    has: &'static [&'static str],
    /// Phrases it must not contain (quoted originals, markup, CSS…).
    lacks: &'static [&'static str],
    /// (file name, media type, size, first bytes).
    attachments: &'static [(&'static str, &'static str, usize, &'static [u8])],
    reply_to: &'static [&'static str],
    tracking_refs: &'static [&'static str],
    /// A phrase `original` must contain; `None`: `original` must be empty.
    original_has: Option<&'static str>,
    extra: &'static [(&'static str, &'static str)],
}

const W: Want = Want {
    title: None,
    name: None,
    email: "",
    message_id: None,
    description: None,
    has: &[],
    lacks: &[],
    attachments: &[],
    reply_to: &[],
    tracking_refs: &[],
    original_has: None,
    extra: &[],
};

enum Outcome {
    Message(Want),
    Ignored(&'static str),
    /// (field, phrase of the message).
    Invalid(&'static str, &'static str),
}

use Outcome::{Ignored, Invalid as Bad, Message};

const JPEG: &[u8] = b"\xff\xd8\xff\xe0";
const PNG: &[u8] = b"\x89PNG";

fn cases() -> Vec<(&'static str, Outcome)> {
    vec![
        (
            "01_plain_utf8_zh.eml",
            Message(Want {
                title: Some("快递三天未送达，客服电话无人接听"),
                name: Some("张伟"),
                email: "zhang.wei@example.com",
                message_id: Some("20261122091530.4F2A1@mail.example.com"),
                has: &[
                    "订单号 A20261119-88231",
                    "“已到达【上海浦东转运中心】”",
                    // Three blank lines collapse into one, trailing tab gone.
                    "。\n\n多次拨打客服热线 400-820-0000 均无人接听，在线客服也只是机器人自动回复。\n\n我的要求：",
                    "联系电话：13812345678",
                ],
                lacks: &["\r", "您好：   ", "\n\n\n"],
                extra: &[("date", "2026-11-22T09:15:30+08:00")],
                ..W
            }),
        ),
        (
            "02_gbk_qp.eml",
            Message(Want {
                title: Some("投诉：空调安装师傅乱收费"),
                name: Some("李娜"),
                email: "lina1988@sina.com",
                message_id: Some("5f3c2a9e.1b2c.17f0a1b2c3d.Coremail.lina1988@sina.com"),
                has: &[
                    "现场额外收取“高空作业费”300元和“铜管加长费”450元，事先并未告知",
                    "请核实并退还不合理收费。",
                    "电话：139 1234 5678",
                ],
                lacks: &["=\n", "=E"],
                extra: &[("date", "2026-11-20T18:42:07+08:00")],
                ..W
            }),
        ),
        (
            "03_gb18030_base64.eml",
            Message(Want {
                title: Some("商品质量问题：羽绒服跑绒"),
                name: Some("王芳"),
                email: "wangfang@126.com",
                message_id: Some("2b7e4d1a.3c9.18c2f3e4a5b.Coremail.wangfang@126.com"),
                // 𠮷 is outside GBK: four bytes in GB18030. € is A2E3.
                has: &[
                    "店长𠮷先生说已过七天不能退换",
                    "标价€199",
                    "货号 YR-2026-0815",
                ],
                lacks: &["\u{fffd}"],
                extra: &[("date", "2026-11-21T20:03:44+08:00")],
                ..W
            }),
        ),
        (
            "04_big5_hk.eml",
            Message(Want {
                title: Some("投訴：信用卡被重複扣款"),
                name: Some("陳大文"),
                email: "chantaiman@netvigator.com",
                message_id: Some("BN7PR04MB4321.hk.netvigator.com"),
                // 喺 and 嘅 are HKSCS characters: decoded through Big5-HKSCS.
                has: &[
                    "我係香港客戶，上個月喺你哋網店用信用卡付款港幣 1,280 元",
                    "真係好失望嘅服務",
                    "電話：+852 9123 4567",
                ],
                lacks: &["\u{fffd}"],
                extra: &[("date", "2026-11-23T11:20:00+08:00")],
                ..W
            }),
        ),
        (
            "05_utf8_split_encoded_words.eml",
            Message(Want {
                // B and Q words over three folded lines join without spaces.
                title: Some("投诉：外卖配送超时2小时，餐品洒漏"),
                name: Some("赵敏"),
                email: "zhaomin@example.net",
                message_id: Some("CAB7x9q=Yx1@mail.example.net"),
                has: &[
                    "实际13:40才送到，汤全洒在袋子里，米饭也是凉的。",
                    "订单号 WM8812093344。\n要求全额退款。",
                ],
                extra: &[("date", "2026-11-24T12:48:19+08:00")],
                ..W
            }),
        ),
        (
            "06_multipart_alternative.eml",
            Message(Want {
                title: Some("手机套餐被擅自升级"),
                name: Some("周杰"),
                email: "zhoujie@example.com",
                message_id: Some("CAJ+8mQ1k2fD=alt@mail.gmail.com"),
                description: Some(
                    "你好，\n\n我的手机号 138 0013 8000 在11月1日被擅自从58元套餐升级为128元套餐，\
                     我从未同意过，也没有收到任何套餐变更短信。本月多扣了70元话费。\n\n\
                     请恢复原套餐并退还多收的费用。\n\n周杰",
                ),
                // The plain part was used: no HTML kept as original.
                original_has: None,
                extra: &[("date", "2026-11-25T08:01:02+08:00")],
                ..W
            }),
        ),
        (
            "07_html_only_outlook.eml",
            Message(Want {
                title: Some("办公设备采购质量问题"),
                name: Some("赵经理"),
                email: "zhao.manager@corp.example.com",
                message_id: Some(
                    "TY2PR06MB3344A1B2C3D4E5F6@TY2PR06MB3344.apcprd06.prod.outlook.com",
                ),
                has: &[
                    "尊敬的客服：\n\n",
                    "存在以下问题<急>：",
                    "订单号 商品 问题\nPO-2026-1107 激光打印机 × 3 其中一台无法开机\nPO-2026-1112 办公椅 × 10 少发2把",
                    "订单详情页 (https://shop.example.com/order/PO-2026-1107)",
                    "均被关闭—“无法处理”。",
                    "联系人：赵经理 & 采购部",
                    "电话：021-6888 1234",
                ],
                lacks: &[
                    "MsoNormal",
                    "font-family",
                    "<p",
                    "<o:p",
                    "<td",
                    "&nbsp;",
                    "shapedefaults",
                    "alert(",
                    "投诉\n",
                ],
                original_has: Some("<p class=\"MsoNormal\">尊敬的客服：<o:p></o:p></p>"),
                extra: &[("date", "2026-11-26T02:30:45Z")],
                ..W
            }),
        ),
        (
            "08_mixed_jpeg_pdf_rfc2231.eml",
            Message(Want {
                title: Some("收到的电饭煲外壳破裂（附照片和发票）"),
                name: Some("孙丽"),
                email: "sunli@example.com",
                message_id: Some("a8f1c2d3-9e8b-4c7a-b6d5-e4f3a2b1c0d9@example.com"),
                description: Some(
                    "昨天收到的电饭煲外壳有明显裂痕，快递包装完好，应是出厂问题。照片和发票见附件，要求换新。",
                ),
                attachments: &[
                    ("IMG_20261127_143022.jpg", "image/jpeg", 2048, JPEG),
                    // filename*=UTF-8''… (RFC 2231) wins over the encoded-word name.
                    ("购物发票.pdf", "application/pdf", 218, b"%PDF-1.4"),
                ],
                extra: &[("date", "2026-11-27T19:22:10+08:00")],
                ..W
            }),
        ),
        (
            "09_nested_related_inline.eml",
            Message(Want {
                title: Some("物业不作为：深夜装修噪音"),
                name: Some("吴敏"),
                email: "wumin@example.org",
                message_id: Some("nested-09.20261128230500@example.org"),
                description: Some(
                    "楼上住户长期深夜装修，噪音严重影响休息，物业多次协调无果。现场照片见下图，投诉材料见附件。\n\n吴敏",
                ),
                attachments: &[
                    ("image001.png", "image/png", 700, PNG),
                    // RFC 2231 continuation: filename*0*= + filename*1*=.
                    (
                        "投诉材料.docx",
                        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                        1508,
                        b"PK\x03\x04",
                    ),
                ],
                extra: &[("date", "2026-11-28T23:05:00+08:00")],
                ..W
            }),
        ),
        (
            "10_reply_qq_style.eml",
            Message(Want {
                title: Some("[TS20261122-000123] 快递延误投诉"),
                name: Some("张伟"),
                email: "zhang.wei@example.com",
                message_id: Some("tencent_5A1B2C3D4E5F@qq.com"),
                description: Some(
                    "已经接到你们的回访电话了，但是包裹到现在还是没有送到，请尽快处理！",
                ),
                reply_to: &[
                    "email:tousu.TS20261122-000123.1@tousu.example.cn",
                    "email:20261122091530.4F2A1@mail.example.com",
                ],
                tracking_refs: &["TS20261122-000123"],
                original_has: Some("您好，您的投诉已受理"),
                extra: &[("date", "2026-11-22T15:30:12+08:00")],
                ..W
            }),
        ),
        (
            "11_reply_gmail.eml",
            Message(Want {
                title: Some("[TS20261122-000456] Refund not received"),
                name: Some("Emily Chen"),
                email: "emily.chen@gmail.com",
                message_id: Some("CAK7fG2pRq+Zt9=w8Lx1@mail.gmail.com"),
                description: Some(
                    "Hi,\n\nIt has been 10 days and I still have not received the refund of $89.90.\n\
                     Please escalate this.\n\nThanks,\nEmily",
                ),
                reply_to: &[
                    "email:tousu.TS20261122-000456.2@tousu.example.cn",
                    "email:tousu.TS20261122-000456.1@tousu.example.cn",
                ],
                tracking_refs: &["TS20261122-000456"],
                original_has: Some("> Your refund has been approved"),
                extra: &[("date", "2026-12-02T21:07:33-05:00")],
                ..W
            }),
        ),
        (
            "12_reply_tracking_only.eml",
            Message(Want {
                title: Some("[TS20261122-000789] 补充材料"),
                name: Some("张伟"),
                email: "zhang.wei@example.com",
                message_id: Some("supplement-000789@example.com"),
                description: Some(
                    "补充一下：快递单号 SF1234567890，快递柜显示已签收，但签收人不是我本人。",
                ),
                // No In-Reply-To: only the subject's tracking number links it.
                reply_to: &[],
                tracking_refs: &["TS20261122-000789"],
                extra: &[("date", "2026-12-03T08:12:00+08:00")],
                ..W
            }),
        ),
        (
            "13_forwarded.eml",
            Message(Want {
                title: Some("投诉：物业停车收费不合理"),
                name: Some("前台 小陈"),
                email: "frontdesk@company.example.com",
                message_id: Some("CAFwd0001@mail.company.example.com"),
                // A forward is not a reply: the forwarded complaint is the content.
                has: &[
                    "转给投诉中心处理，谢谢。",
                    "From: 刘洋 <liuyang@example.org>",
                    "小区物业从11月起将月租车位费从300元涨到500元，未经业主大会表决",
                    "刘洋 13700001111",
                ],
                extra: &[("date", "2026-11-23T09:00:00+08:00")],
                ..W
            }),
        ),
        (
            "14_out_of_office_auto_submitted.eml",
            Ignored(email::AUTO_REPLY),
        ),
        ("15_x_autoreply_163.eml", Ignored(email::AUTO_REPLY)),
        ("16_precedence_bulk.eml", Ignored(email::BULK)),
        ("17_dsn_exchange_report.eml", Ignored(email::BOUNCE)),
        ("18_mailer_daemon_bounce.eml", Ignored(email::BOUNCE)),
        (
            "19_no_message_id.eml",
            Message(Want {
                title: Some("Water bill doubled without explanation"),
                name: Some("Old Client User"),
                email: "olduser@legacy.example.net",
                message_id: None,
                description: Some(
                    "My water bill for October is 312 yuan, double the usual 150 yuan.\n\
                     The meter reading on the bill does not match my meter.",
                ),
                extra: &[("date", "2026-11-26T07:45:00+08:00")],
                ..W
            }),
        ),
        (
            "20_broken_boundary.eml",
            Bad(
                "body",
                "\"=_declared_boundary_A\" declared in Content-Type never occurs",
            ),
        ),
        ("21_no_from.eml", Bad("from", "no sender address")),
        (
            "22_empty_body.eml",
            Bad("description", "no text and no attachments"),
        ),
        (
            "23_english.eml",
            Message(Want {
                title: Some("Damaged parcel - order #US-55012"),
                name: Some("John Smith"),
                email: "john.smith@example.com",
                message_id: Some("55012.1764462000@Example.COM"),
                has: &[
                    "My order #US-55012 (a ceramic vase) arrived today completely shattered.",
                    "Best regards,\nJohn Smith\n+1 415 555 0134",
                ],
                extra: &[("date", "2026-11-29T16:20:00-08:00")],
                ..W
            }),
        ),
        (
            "24_qq_mail.eml",
            Message(Want {
                title: Some("会员自动续费未提醒"),
                name: Some("小雨"),
                email: "1234567890@qq.com",
                message_id: Some("tencent_9E8D7C6B5A4F@qq.com"),
                description: Some(
                    "你们的APP会员自动续费没有任何提醒，直接从微信扣了198元，申请退款被拒。要求退款并关闭自动续费。\n\n小雨",
                ),
                extra: &[("date", "2026-11-30T22:11:00+08:00")],
                ..W
            }),
        ),
        (
            "25_163_reply_to_differs.eml",
            Message(Want {
                title: Some("健身房倒闭卡内余额无法退还"),
                name: Some("李明"),
                // From, not Reply-To, is the complainant; Reply-To is kept aside.
                email: "liming@163.com",
                message_id: Some("6a1b2c3d.4e5f.18c3a4b5c6d.Coremail.liming@163.com"),
                has: &["卡内余额2400元无法退还。\n请协助维权。"],
                extra: &[
                    ("date", "2026-12-01T13:14:15+08:00"),
                    ("reply_to", "liming.work@corp.example.com"),
                ],
                ..W
            }),
        ),
        (
            "26_long_subject_folded.eml",
            Message(Want {
                title: Some(
                    "关于贵公司在2026年11月双十一促销活动中虚假宣传、先涨价后打折、\
                     承诺的赠品未发放以及客服多次推诿拒不处理的投诉",
                ),
                name: Some("黄磊"),
                email: "huanglei@example.com",
                message_id: Some("long-subject-26@example.com"),
                has: &["活动价699元"],
                extra: &[("date", "2026-12-02T10:10:10+08:00")],
                ..W
            }),
        ),
        (
            "27_attachment_only.eml",
            Message(Want {
                title: Some("快递外包装破损照片"),
                name: Some("马超"),
                email: "machao@example.com",
                message_id: Some("attach-only-27@example.com"),
                // No text: the subject says what the photo shows.
                description: Some("快递外包装破损照片"),
                attachments: &[("IMG_0427.JPG", "image/jpeg", 3000, JPEG)],
                extra: &[("date", "2026-12-03T17:00:00+08:00")],
                ..W
            }),
        ),
        (
            "28_message_rfc822_attached.eml",
            Message(Want {
                title: Some("退货运费被扣（原邮件见附件）"),
                name: Some("林涛"),
                email: "lintao@example.net",
                message_id: Some("outer-28@example.net"),
                description: Some(
                    "商家一直不回复，原邮件见附件。\n\n---------- 附件邮件：退货运费被扣 ----------\n\
                     七天无理由退货，商家却从退款中扣了15元运费。",
                ),
                attachments: &[(
                    "退货运费被扣.eml",
                    "message/rfc822",
                    363,
                    b"From: =?UTF-8?B?",
                )],
                extra: &[("date", "2026-12-04T09:30:00+08:00")],
                ..W
            }),
        ),
        (
            "29_iso_8859_1.eml",
            Message(Want {
                title: Some("Café machine broken after one week"),
                name: Some("Renée Dubois"),
                email: "renee.dubois@example.fr",
                message_id: Some("renee-29@example.fr"),
                has: &[
                    "The café machine I bought (model Crème 3000",
                    "£219",
                    "warranty. Renée",
                ],
                lacks: &["\u{fffd}", "=E9"],
                extra: &[("date", "2026-12-05T11:00:00+01:00")],
                ..W
            }),
        ),
        (
            "30_tracking_in_body.eml",
            Message(Want {
                title: Some("又一次快递延误"),
                name: Some("张伟"),
                email: "zhang.wei@example.com",
                message_id: Some("body-tracking-30@example.com"),
                has: &["上次的投诉 TS20261122-000123 处理完了"],
                // Mentioning an old tracking number in the text is not a reply to it.
                tracking_refs: &[],
                extra: &[("date", "2026-12-06T09:00:00+08:00")],
                ..W
            }),
        ),
        (
            "31_not_a_message.eml",
            Bad("message", "not an email message"),
        ),
        (
            "32_reply_to_without_from.eml",
            Message(Want {
                title: Some("网页表单转发：燃气费多收"),
                name: Some("高峰"),
                // No From: Reply-To is the only way back to the person.
                email: "gaofeng@example.com",
                message_id: Some("webform-32@gateway.example.com"),
                description: Some("11月燃气费账单比实际用量多收了23立方米。"),
                extra: &[("date", "2026-12-07T10:00:00+08:00")],
                ..W
            }),
        ),
        ("33_read_receipt_mdn.eml", Ignored(email::RECEIPT)),
        (
            "34_invalid_gbk_bytes.eml",
            Message(Want {
                title: Some("充电宝鼓包"),
                name: Some("冯雪"),
                email: "fengxue@example.com",
                message_id: Some("bad-gbk-34@example.com"),
                // Invalid bytes are replaced, the rest is still read.
                has: &["充电宝使用三天后鼓包，", "\u{fffd}", "在安全隐患。"],
                extra: &[("date", "2026-12-08T12:00:00+08:00")],
                ..W
            }),
        ),
        (
            "35_raw_8bit_gbk_headers.eml",
            Message(Want {
                // Unencoded GBK bytes in the Subject, read with the body's charset.
                title: Some("投诉：电梯经常困人"),
                name: None,
                email: "legacy@example.cn",
                message_id: Some("raw8bit-35@example.cn"),
                description: Some("小区3号楼电梯本月已困人四次，物业只是重启了事。"),
                extra: &[("date", "2026-12-09T08:30:00+08:00")],
                ..W
            }),
        ),
        (
            "36_precedence_list.eml",
            Message(Want {
                // Precedence: list alone is a person writing through a list.
                title: Some("[业主群] 小区供暖温度不达标"),
                name: Some("业主 何平"),
                email: "heping@example.com",
                message_id: Some("list-36@example.com"),
                description: Some("供暖开始一个月了，室内温度只有14度，远低于18度的标准。"),
                extra: &[("date", "2026-12-10T07:00:00+08:00")],
                ..W
            }),
        ),
        ("37_null_return_path_bounce.eml", Ignored(email::BOUNCE)),
        (
            "38_reply_163_zaixiedao.eml",
            Message(Want {
                title: Some("[TS20261121-000042] 羽绒服跑绒"),
                name: Some("王芳"),
                email: "wangfang@163.com",
                message_id: Some("7c8d9e0f.5a6b.18c4b5c6d7e.Coremail.wangfang@163.com"),
                description: Some("门店说返修要一个月，我不接受，坚持退货。"),
                reply_to: &[
                    "email:tousu.TS20261121-000042.3@tousu.example.cn",
                    "email:2b7e4d1a.3c9.18c2f3e4a5b.Coremail.wangfang@126.com",
                    "email:tousu.TS20261121-000042.1@tousu.example.cn",
                ],
                tracking_refs: &["TS20261121-000042"],
                original_has: Some("写道：\n>您好，门店反馈可以为您免费返修。"),
                extra: &[("date", "2026-12-12T19:00:00+08:00")],
                ..W
            }),
        ),
        (
            "39_reply_outlook_original_message.eml",
            Message(Want {
                title: Some("[TS20261130-000321] Billing error on invoice 7781"),
                name: Some("Tom Baker"),
                email: "tom.baker@corp.example.co.uk",
                message_id: Some("LO2P265MB1234ABCD@LO2P265MB1234.GBRP265.PROD.OUTLOOK.COM"),
                // The QP soft line break is joined.
                description: Some(
                    "The corrected invoice still charges VAT twice (line 4 and line 9). \
                     Please fix it before Friday.\n\nTom",
                ),
                reply_to: &["email:tousu.TS20261130-000321.2@tousu.example.cn"],
                tracking_refs: &["TS20261130-000321"],
                original_has: Some("-----Original Message-----"),
                extra: &[("date", "2026-12-14T09:12:00Z")],
                ..W
            }),
        ),
        ("40_outlook_automatic_reply.eml", Ignored(email::AUTO_REPLY)),
        (
            "41_reply_only_quote.eml",
            Message(Want {
                title: Some("[TS20261122-000123] 请补充收货地址"),
                name: Some("张伟"),
                email: "zhang.wei@example.com",
                message_id: Some("only-quote-41@example.com"),
                // Nothing but the quote: kept, rather than an empty follow-up.
                description: Some(
                    "> 请回复您的收货地址：上海市浦东新区张江路100弄5号\n> 收货人：张伟",
                ),
                reply_to: &["email:tousu.TS20261122-000123.2@tousu.example.cn"],
                tracking_refs: &["TS20261122-000123"],
                extra: &[("date", "2026-11-22T18:00:00+08:00")],
                ..W
            }),
        ),
        ("42_x_autorespond.eml", Ignored(email::AUTO_REPLY)),
    ]
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/email")
}

fn read(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check_message(name: &str, raw: &[u8], m: &Inbound, want: &Want) {
    let f = &m.fields;
    assert_eq!(f.title.as_deref(), want.title, "{name}: title");
    assert_eq!(f.name.as_deref(), want.name, "{name}: name");
    assert_eq!(f.email.as_deref(), Some(want.email), "{name}: email");
    assert_eq!(f.phone, None, "{name}: phone is never guessed from mail");
    assert_eq!(
        f.occurred_at, None,
        "{name}: the Date header is not occurred_at"
    );
    assert!(!f.anonymous, "{name}: anonymous");

    let expected_id = match want.message_id {
        Some(id) => id.to_owned(),
        None => format!("sha256:{}", hex::encode(Sha256::digest(raw))),
    };
    assert_eq!(
        f.channel_message_id.as_deref(),
        Some(expected_id.as_str()),
        "{name}: id"
    );
    let keys: Vec<String> = want
        .message_id
        .iter()
        .map(|id| format!("email:{id}"))
        .collect();
    assert_eq!(m.thread_keys, keys, "{name}: thread_keys");

    let description = f.description.as_deref().unwrap_or_default();
    assert!(!description.is_empty(), "{name}: description is empty");
    assert_eq!(
        description,
        description.trim(),
        "{name}: description is trimmed"
    );
    if let Some(exact) = want.description {
        assert_eq!(description, exact, "{name}: description");
    }
    for phrase in want.has {
        assert!(
            description.contains(phrase),
            "{name}: description lacks {phrase:?}:\n{description}"
        );
    }
    for phrase in want.lacks {
        assert!(
            !description.contains(phrase),
            "{name}: description has {phrase:?}:\n{description}"
        );
    }

    let got: Vec<(&str, &str, usize)> = m
        .attachments
        .iter()
        .map(|a| (a.filename.as_str(), a.media_type.as_str(), a.data.len()))
        .collect();
    let wanted: Vec<(&str, &str, usize)> = want
        .attachments
        .iter()
        .map(|&(n, t, s, _)| (n, t, s))
        .collect();
    assert_eq!(got, wanted, "{name}: attachments");
    for (a, &(_, _, _, magic)) in m.attachments.iter().zip(want.attachments) {
        assert!(
            a.data.starts_with(magic),
            "{name}: {} does not start with {magic:?}",
            a.filename
        );
    }

    assert_eq!(m.reply_to, want.reply_to, "{name}: reply_to");
    assert_eq!(m.tracking_refs, want.tracking_refs, "{name}: tracking_refs");
    match want.original_has {
        Some(phrase) => assert!(
            m.original.contains(phrase),
            "{name}: original lacks {phrase:?}:\n{}",
            m.original
        ),
        None => assert_eq!(m.original, "", "{name}: original"),
    }
    let extra: Vec<(&str, &str)> = m
        .extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(extra, want.extra, "{name}: extra");
}

#[test]
fn every_fixture_gives_its_expected_outcome() {
    for (name, outcome) in cases() {
        let raw = read(name);
        let got = email::parse(&raw);
        match (&outcome, &got) {
            (Message(want), Ok(Email::Message(m))) => check_message(name, &raw, m, want),
            (Ignored(reason), Ok(Email::Ignored(got_reason))) => {
                assert_eq!(got_reason, reason, "{name}: ignored reason");
            }
            (
                Bad(field, phrase),
                Err(Invalid {
                    field: got_field,
                    message,
                }),
            ) => {
                assert_eq!(got_field, field, "{name}: invalid field ({message})");
                assert!(
                    message.contains(phrase),
                    "{name}: {message:?} lacks {phrase:?}"
                );
            }
            _ => panic!("{name}: unexpected outcome {got:?}"),
        }
    }
}

#[test]
fn the_table_covers_every_fixture_file() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixture dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    on_disk.sort();
    let mut in_table: Vec<String> = cases().into_iter().map(|(n, _)| n.to_owned()).collect();
    in_table.sort();
    assert_eq!(on_disk, in_table);
    assert!(in_table.len() >= 30, "only {} fixtures", in_table.len());
}

#[test]
fn parsing_is_deterministic_and_the_hash_id_is_per_message() {
    let a = read("19_no_message_id.eml");
    assert_eq!(email::parse(&a), email::parse(&a));
    // Another message without a Message-ID gets another id.
    let mut b = a.clone();
    b.extend_from_slice(b"P.S. Meter number 0031-7788.\n");
    let id = |raw: &[u8]| match email::parse(raw) {
        Ok(Email::Message(m)) => m.fields.channel_message_id,
        other => panic!("{other:?}"),
    };
    assert_ne!(id(&a), id(&b));
    assert!(id(&b).is_some_and(|id| id.starts_with("sha256:") && id.len() == 7 + 64));
}

#[test]
fn a_bounce_of_our_own_acknowledgement_is_ignored_even_though_it_names_a_tracking_number() {
    // The DSN quotes "[TS20261122-000123]" in its subject; it must not
    // become a follow-up of that complaint.
    assert_eq!(
        email::parse(&read("17_dsn_exchange_report.eml")),
        Ok(Email::Ignored(email::BOUNCE))
    );
    assert_eq!(
        email::parse(&read("14_out_of_office_auto_submitted.eml")),
        Ok(Email::Ignored(email::AUTO_REPLY))
    );
}

#[test]
fn truncated_and_mangled_fixtures_never_panic() {
    for (name, _) in cases() {
        let raw = read(name);
        let step = (raw.len() / 40).max(1);
        for cut in (0..raw.len()).step_by(step) {
            let _ = email::parse(&raw[..cut]);
            let _ = email::parse(&raw[cut..]);
        }
        // CRLF → LF and LF → CR only.
        let lf: Vec<u8> = raw.iter().copied().filter(|&b| b != b'\r').collect();
        let _ = email::parse(&lf);
        let cr: Vec<u8> = lf
            .iter()
            .map(|&b| if b == b'\n' { b'\r' } else { b })
            .collect();
        let _ = email::parse(&cr);
    }
}

#[test]
fn line_endings_do_not_change_the_outcome() {
    // Postfix pipes deliver LF, webhooks CRLF: the same message either way.
    for name in [
        "02_gbk_qp.eml",
        "08_mixed_jpeg_pdf_rfc2231.eml",
        "10_reply_qq_style.eml",
        "22_empty_body.eml",
    ] {
        let raw = read(name);
        let lf: Vec<u8> = raw.iter().copied().filter(|&b| b != b'\r').collect();
        let (a, b) = (email::parse(&raw), email::parse(&lf));
        match (a, b) {
            (Ok(Email::Message(a)), Ok(Email::Message(b))) => {
                assert_eq!(a.fields.description, b.fields.description, "{name}");
                assert_eq!(a.fields.title, b.fields.title, "{name}");
                let sizes = |m: &Inbound| {
                    m.attachments
                        .iter()
                        .map(|x| x.data.len())
                        .collect::<Vec<_>>()
                };
                assert_eq!(sizes(&a), sizes(&b), "{name}");
            }
            (Err(a), Err(b)) => assert_eq!(a.field, b.field, "{name}"),
            (a, b) => panic!("{name}: {a:?} vs {b:?}"),
        }
    }
}

/// Inputs the fuzzer (`fuzz/fuzz_targets/email.rs`) found to crash, minimized.
#[test]
fn fuzz_regressions() {
    // A bare message/rfc822 inside a message/rfc822 part, ended by the
    // outer boundary: mail-parser's nested-message state went out of step
    // (debug_assert "Invalid part ID, could not find multipart").
    let nested_in_nested: &[u8] = b"Content-Type: multipart/; boundary=fwd_28\"\r\n\n\
        --fwd_28Content-Type: message/rfc822;\n\r\n-2:\n\
        Content-Type: message/rfc822; a\r\n\r\nr\r\n\r\n--fwd_28--\r";
    let got = email::parse(nested_in_nested);
    assert!(matches!(&got, Err(e) if e.field == "from"), "{got:?}");
    // The same with a sender: one attached message, kept as sent.
    let mut with_from = b"From: a@example.com\r\n".to_vec();
    with_from.extend_from_slice(nested_in_nested);
    let Ok(Email::Message(m)) = email::parse(&with_from) else {
        panic!("{:?}", email::parse(&with_from));
    };
    assert_eq!(m.fields.description.as_deref(), Some("附件: message.eml"));
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].media_type, "message/rfc822");
    assert_eq!(
        m.attachments[0].data,
        b"-2:\nContent-Type: message/rfc822; a\r\n\r\nr\r\n"
    );
}
