use std::fmt;
use std::str::FromStr;

use crate::InvalidValue;

/// The channel a complaint arrived on. Its name is also the NATS subject
/// token in `complaint.received.<channel>` and `tousu.intake.<channel>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Phone,
    Email,
    WebForm,
    WeChat,
    Forum,
    Manual,
}

impl Channel {
    pub const ALL: [Channel; 6] = [
        Channel::Phone,
        Channel::Email,
        Channel::WebForm,
        Channel::WeChat,
        Channel::Forum,
        Channel::Manual,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::Phone => "phone",
            Channel::Email => "email",
            Channel::WebForm => "webform",
            Channel::WeChat => "wechat",
            Channel::Forum => "forum",
            Channel::Manual => "manual",
        }
    }
}

impl FromStr for Channel {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                InvalidValue::new(
                    "channel",
                    format!("{s:?} is not one of phone, email, webform, wechat, forum, manual"),
                )
            })
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>().unwrap(), c);
        }
        assert!("fax".parse::<Channel>().is_err());
        assert!("WebForm".parse::<Channel>().is_err());
    }
}
