//! The phrase lists behind intents and action items. Plain data, so a reviewer can read what
//! the rules look for and the evaluation set (`make eval`) can measure it.

use serde::{Deserialize, Serialize};

use super::Speaker;
use super::text::{capitalize, find_phrase, has_any, mentions_time, negated, normalize, sentences};

/// What the caller wanted, with the sentences that show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub name: String,
    pub confidence: f64,
    pub evidence: Vec<String>,
}

/// Buying, said outright or indirectly ("pretty much sold", a trade-in toward the next one).
/// A negation in front cancels a phrase ("I'm not going to buy").
pub const PURCHASE: &[&str] = &[
    "place an order",
    "place the order",
    "order one",
    "order it",
    "order two",
    "i'd like to order",
    "i want to order",
    "ready to order",
    "i'll take it",
    "i'll take one",
    "i'll take two",
    "i'll take both",
    "i'll take that one",
    "we'll take it",
    "we'll take one",
    "i'll get it",
    "i'll get one",
    "i'll go with",
    "we'll go with",
    "let's go with",
    "go with the",
    "sign me up",
    "sign us up",
    "count me in",
    "go ahead with",
    "let's go ahead",
    "go ahead and order",
    "ready to go ahead",
    "let's do it",
    "let's do this",
    "let's do that",
    "go for it",
    "i'm sold",
    "pretty much sold",
    "you sold me",
    "sold on it",
    "it's a deal",
    "we have a deal",
    "you've got a deal",
    "where do i sign",
    "lock it in",
    "lock in the",
    "put me down for",
    "put down a deposit",
    "put a deposit",
    "leave a deposit",
    "pay the deposit",
    "pay a deposit",
    "make an offer",
    "put in an offer",
    "put an offer",
    "trade in my",
    "trade-in",
    "trading in",
    "want to get one",
    "i'd like to get one",
    "upgrade",
    "renew",
    "reactivate",
    "subscribe",
    "sign up for",
    "keep the plan",
    "add it to my policy",
    "switch over",
    "switch to you",
    "buy it",
    "buy one",
    "buy them",
    "buy this",
    "buy that",
    "buy the",
    "i'll buy",
    "we'll buy",
    "i will buy",
    "we will buy",
    "ready to buy",
    "ready to purchase",
    "make the purchase",
    "complete the purchase",
    "purchase it",
    "i'd like to buy",
    "i want to buy it",
    "i'll take the",
    "hold it for me",
    "put my name on it",
    "i'll come sign",
    "come sign",
    "sign the papers",
    "sign the contract",
    "keep going with",
    "keep it going",
    "i'm in",
    "i'll have a",
    "i'll have the",
    "i'll take a",
    "can i order",
    "i'd like to place",
    "place an order for",
    "for pickup",
    "for pick-up",
    "for pick up",
    "let's do the",
    "let's do a",
    "let's do one",
    "i'll do the",
    "we'll do the",
    "i want order",
    "want to order",
    "order for take away",
    "order for takeaway",
    "for take away",
    "for takeaway",
    "for delivery",
    "can we start it",
    "start it today",
    "start the policy",
    "start the plan",
    "trade in",
    "going to trade",
];

/// Asking about or discussing what something costs.
pub const PRICING: &[&str] = &[
    "price",
    "prices",
    "priced",
    "pricing",
    "how much",
    "cost",
    "costs",
    "quote",
    "estimate",
    "discount",
    "a deal on",
    "best deal",
    "financing",
    "finance it",
    "payment plan",
    "monthly payment",
    "monthly payments",
    "per month",
    "a month",
    "down payment",
    "budget",
    "afford",
    "expensive",
    "cheaper",
    "cheapest",
    "pricey",
    "steep",
    "rates",
    "rate",
    "premium",
    "deductible",
    "copay",
    "co-pay",
    "fee",
    "fees",
    "what do you charge",
    "do you charge",
    "charge for",
    "money-wise",
    "ballpark",
    "promotion",
    "promo",
    "coupon",
    "special offer",
    "what's it worth",
    "trade-in value",
    "covered by",
    "does insurance cover",
    "insurance cover",
    "out of pocket",
    "dollars",
    "dollar",
    "bucks",
    "grand",
    "more than i expected",
    "more than we expected",
    "less than i expected",
    "less than i thought",
    "over budget",
    "over our budget",
    "price range",
    "what they cover",
    "what it covers",
    "what's covered",
    "cover it",
    "covers it",
];

/// Booking, asking for or moving a visit, appointment, viewing or demo.
pub const BOOKING: &[&str] = &[
    "book",
    "booking",
    "book in",
    "appointment",
    "schedule",
    "reschedule",
    "reserve",
    "reservation",
    "test ride",
    "test drive",
    "come in",
    "come by",
    "come over",
    "stop by",
    "swing by",
    "drop by",
    "pop in",
    "pop by",
    "visit",
    "viewing",
    "a showing",
    "see the house",
    "see the place",
    "see the property",
    "see the apartment",
    "see the flat",
    "see it in person",
    "take a look at it",
    "have a look at it",
    "slot",
    "demo",
    "consultation",
    "check-up",
    "checkup",
    "cleaning",
    "fit me in",
    "squeeze me in",
    "get me in",
    "get in to see",
    "earliest available",
    "any availability",
    "any openings",
    "send someone",
    "send a technician",
    "come out",
    "come take a look",
    "when can someone come",
    "someone come out",
    "send somebody",
    "bring it in",
    "drop it off",
    "i can drop it",
    "book me",
    "set up a time",
    "set up an appointment",
    "get an appointment",
    "make an appointment",
    "possible to see",
    "can i see it",
    "could i see it",
    "can we see it",
    "come see it",
    "come and see",
    "see it tomorrow",
    "see it today",
    "take a look at the",
    "move my appointment",
    "change my appointment",
];

/// Help with something the caller already has.
pub const SUPPORT: &[&str] = &[
    "not working",
    "isn't working",
    "doesn't work",
    "don't work",
    "won't work",
    "stopped working",
    "quit working",
    "won't turn on",
    "won't start",
    "won't charge",
    "won't open",
    "won't let me",
    "doesn't turn on",
    "broken",
    "broke",
    "it broke",
    "problem with",
    "issue with",
    "trouble with",
    "having trouble",
    "having problems",
    "having an issue",
    "something wrong with",
    "error",
    "error message",
    "glitch",
    "bug",
    "crash",
    "crashes",
    "keeps crashing",
    "keeps dropping",
    "keeps freezing",
    "keeps beeping",
    "keeps leaking",
    "leaking",
    "a leak",
    "making a noise",
    "making noise",
    "strange noise",
    "weird noise",
    "squeaking",
    "grinding",
    "rattling",
    "warning light",
    "check engine",
    "flat tire",
    "flat tyre",
    "repair",
    "fix it",
    "fix the",
    "fixed",
    "help me with",
    "need help",
    "how do i",
    "how do you",
    "can't log in",
    "cannot log in",
    "can't sign in",
    "can't get in",
    "can't access",
    "locked out",
    "password",
    "reset my",
    "my account",
    "my bill",
    "my invoice",
    "billing",
    "my claim",
    "file a claim",
    "warranty",
    "recall",
    "really slow",
    "lost my",
    "left my",
    "where is my",
    "status of",
    "still not fixed",
    "came loose",
    "fell out",
    "fell off",
    "cracked",
    "chipped",
    "checking on",
    "check on my",
    "just checking",
    "dropped it off",
    "how-to",
    "how to",
    "can't find",
    "can't figure out",
    "accident",
    "proof of",
    "a copy of",
    "need a copy",
    "update my",
    "change my",
    "add a driver",
    "been out",
    "is out",
    "went out",
    "came on",
    "won't stop",
    "still running",
    "maintenance request",
    "stolen",
    "serial number",
    "receipt",
    "my policy",
    "my order",
    "is it ready",
    "ready yet",
    "question about my",
    "stuck",
    "not showing",
    "doesn't show",
    "missing",
];

/// Dissatisfaction, said plainly, politely or with money on the line.
pub const COMPLAINT: &[&str] = &[
    "complaint",
    "complain",
    "unacceptable",
    "not acceptable",
    "terrible",
    "awful",
    "horrible",
    "worst",
    "disappointed",
    "disappointing",
    "refund",
    "money back",
    "my money",
    "charged twice",
    "double charged",
    "double-charged",
    "charged me twice",
    "overcharged",
    "over-charged",
    "charged me for",
    "never agreed to",
    "didn't agree to",
    "didn't say yes",
    "didn't authorize",
    "ridiculous",
    "frustrated",
    "frustrating",
    "fed up",
    "sick of",
    "tired of",
    "never again",
    "speak to a manager",
    "talk to a manager",
    "speak to your manager",
    "supervisor",
    "rude",
    "still waiting",
    "still haven't",
    "still hasn't",
    "still no",
    "still not",
    "third time",
    "second time",
    "fourth time",
    "again and again",
    "keep calling",
    "nobody called",
    "no one called",
    "nobody got back",
    "no one got back",
    "never called",
    "never got back",
    "never heard back",
    "nobody told me",
    "no one told me",
    "not happy",
    "unhappy",
    "not impressed",
    "not satisfied",
    "dissatisfied",
    "waste of",
    "wasted",
    "lied",
    "misled",
    "you promised",
    "was promised",
    "were promised",
    "supposed to be",
    "was supposed to",
    "were supposed to",
    "didn't show",
    "never showed",
    "no-show",
    "no show",
    "stood up",
    "kept waiting",
    "on hold for",
    "messed up",
    "screwed up",
    "incompetent",
    "useless",
    "unbelievable",
    "a joke",
    "not good enough",
    "poor service",
    "bad service",
    "bad review",
    "damaged",
    "scratched",
    "not fixed",
    "same problem",
    "happened again",
    "again?",
    "annoyed",
    "angry",
    "upset",
    "furious",
    "called twice",
    "called three times",
    "i've called",
    "i have called",
    "i'm done",
    "we're done",
    "not paying",
    "refuse to pay",
    "went up",
    "gone up",
    "nobody even",
    "no one even",
    "didn't even",
    "not okay",
    "not fair",
    "unfair",
    "makes no sense",
    "doesn't make sense",
    "shouldn't have to",
    "should have been",
    "should have called",
    "should have asked",
    "should have told",
    "should've",
    "every single time",
    "every time i",
    "your fault",
    "your mistake",
    "not yelling",
    "actually do something",
    "dropped the ball",
    "runaround",
    "going in circles",
    "for weeks",
    "for months",
    "nobody answers",
    "no one answers",
    "nobody picks up",
    "no one picks up",
    "one star",
    "taking my business",
    "can't believe",
    "cannot believe",
    "expired",
    "nearly fell",
    "excuse",
    "without asking",
    "without telling",
    "never asked",
    "didn't ask for",
    "like that was my",
    "like it was my",
    "want someone to know",
    "stood there",
    "we left",
    "we almost had",
    "almost had",
    "for forty minutes",
    "for an hour",
    "over an hour",
    "it's still",
    "still running",
    "still leaking",
    "still broken",
    "still doesn't",
    "still won't",
    "holding you to that",
    "a basic thing",
    "a different agent",
    "someone else to handle",
    "we just lost",
    "we lost",
    "no offense",
    "okay, whatever",
    "ok, whatever",
    "fine, whatever",
    "whatever. bye",
    "you people",
    "drives me nuts",
    "drives me crazy",
    "driving me nuts",
    "driving me crazy",
    "nobody sent",
    "no one sent",
    "actually do it",
    "second call",
    "third call",
    "fourth call",
    "fifth call",
    "fifth time",
    "calls this week",
    "calls a day",
    "hasn't come",
    "hasn't arrived",
    "never arrived",
    "never came",
    "actually happen",
    "happen this time",
    "for once",
    "was told it would",
    "were told it would",
    "told me it would",
    "said it would be",
];

/// Asking the business to call back; the caller's own "I'll call back" is not this.
pub const CALL_BACK: &[&str] = &[
    "call me back",
    "call back",
    "callback",
    "call-back",
    "ring me back",
    "ring me",
    "call me later",
    "call me tomorrow",
    "call me next",
    "call me on",
    "call me in",
    "call me after",
    "call me before",
    "call me this",
    "call me at",
    "call me when",
    "give me a call",
    "give me a ring",
    "to call me",
    "can you call me",
    "could you call me",
    "please call me",
    "have someone call",
    "have him call",
    "have her call",
    "have them call",
    "get back to me",
    "try me again",
    "try me later",
    "better time to call",
    "call again",
    "talk later",
    "talk another time",
    "not a good time",
    "bad time",
    "in a meeting",
    "i'm driving",
    "reach me",
];

/// The caller will call, write or come back themselves.
pub const CALLER_WILL_CALL: &[&str] = &[
    "i'll call",
    "i will call",
    "i'll call back",
    "i'll call you",
    "i'll give you a call",
    "i'll give you a ring",
    "i'll ring",
    "i'll phone",
    "i'll get back to you",
    "i'll be in touch",
    "i'll reach out",
    "i'll let you know",
    "let me call you",
    "i'm going to call",
    "i can call",
    "i'll call when",
];

/// Refusals that stand wherever they are said.
pub const STRONG_REFUSAL: &[&str] = &[
    "not interested",
    "no longer interested",
    "stop calling",
    "quit calling",
    "don't call",
    "do not call",
    "don't contact",
    "remove me",
    "remove my number",
    "take me off",
    "take my number off",
    "not in the market",
    "i'll pass",
    "we'll pass",
    "i'm going to pass",
    "going to pass",
    "went with another",
    "went with someone else",
    "went with a different",
    "bought one elsewhere",
    "already bought",
    "already found",
    "already signed with",
    "already have one",
    "already have a",
    "already got one",
    "already got a",
    "decided against",
    "decided not to",
    "not going to go ahead",
    "not moving forward",
    "not going to renew",
    "won't be renewing",
    "cancel my",
    "not for me",
    "not for us",
    "don't need it",
    "don't need one",
    "don't need anything",
    "don't need any",
    "don't want it",
    "don't want one",
    "don't want anything",
    "don't want any",
    "no use for",
    "not going to be coming back",
    "not coming back",
    "won't be coming back",
    "won't be back",
    "not going to come back",
    "find another",
    "found another",
    "switching to",
    "going with the other",
    "going with someone else",
    "going elsewhere",
    "not looking to",
    "not looking right now",
    "not looking at the moment",
    "i'm not looking.",
    "not looking for anything",
    "not really looking",
    "won't be needing",
    "no longer need",
    "don't need it anymore",
    "stop you right there",
    "bought one already",
    "already got",
    "bought elsewhere",
    "from another dealer",
    "somewhere else",
    "elsewhere",
];

/// Refusals that count only when they answer the offer itself, not a side question, and
/// only on a call with no buying or booking elsewhere.
pub const WEAK_REFUSAL: &[&str] = &[
    "no thanks",
    "no thank you",
    "not right now",
    "not at the moment",
    "not at this time",
    "not today",
    "not now",
    "maybe later",
    "maybe another time",
    "some other time",
    "i'm good",
    "we're good",
    "i'm all set",
    "we're all set",
    "i don't think so",
    "not really",
    "too expensive",
    "out of my budget",
    "can't afford",
    "i don't think we can",
    "we can't do it",
    "can't swing it",
    "not this year",
    "not in the budget",
    "not in our budget",
];

/// Reached the wrong party, in the ways people say it.
pub const WRONG_NUMBER: &[&str] = &[
    "wrong number",
    "wrong person",
    "wrong business",
    "wrong place",
    "thought this was",
    "thought i was calling",
    "thought i called",
    "i was trying to reach",
    "trying to reach",
    "i was trying to call",
    "meant to call",
    "meant to dial",
    "must have dialed",
    "must've dialed",
    "must have misdialed",
    "misdialed",
    "dialed wrong",
    "dialled wrong",
    "a typo",
    "wrong digit",
    "no one by that name",
    "nobody by that name",
    "no one here by",
    "nobody here by",
    "no one named",
    "nobody named",
    "no one here called",
    "nobody here called",
    "doesn't live here",
    "don't live here",
    "doesn't work here",
    "no longer works here",
    "doesn't work there",
    "left the company",
    "you have the wrong",
    "you've got the wrong",
    "you got the wrong",
    "got the wrong",
    "never heard of",
    "don't know anyone",
    "don't know any",
    "who are you looking for",
    "just got this number",
    "got this number",
    "new number",
    "this number used to",
    "used to have this number",
    "had this number since",
    "i've had this number",
    "had it since",
    "used to belong",
    "previous owner of this number",
    "pressed the wrong",
    "hit the wrong",
    "wrong thing",
    "used to live here",
    "doesn't live here anymore",
    "not the one you want",
    "name's not",
    "name is not",
    "there's no one",
    "there's nobody",
    "don't think there's a",
    "i think you want the",
    "you want the landlord",
    "who is this",
    "isn't his number",
    "isn't her number",
    "not his number",
    "not her number",
    "his number anymore",
    "her number anymore",
    "moved out months ago",
];

/// A voicemail greeting or an answering machine.
pub const VOICEMAIL: &[&str] = &[
    "leave a message",
    "leave your message",
    "leave me a message",
    "leave your name",
    "after the tone",
    "at the tone",
    "after the beep",
    "at the beep",
    "not available to take your call",
    "can't take your call",
    "cannot take your call",
    "can't come to the phone",
    "reached the voicemail",
    "voicemail of",
    "voice mail",
    "voicemail box",
    "mailbox is full",
    "record your message",
    "the person you are calling",
    "the person you're calling",
    "please leave",
    "i'll get back to you as soon as",
    "get back to you as soon as possible",
    "you've reached",
    "you have reached",
    "leave us a message",
    "leave us",
    "you know what to do",
    "not here right now",
    "can't get to the phone",
];

/// What an interviewer asks and says, across the call (any of the agent's turns).
pub const INTERVIEWER: &[&str] = &[
    "interview",
    "screening",
    "screening call",
    "the role",
    "this role",
    "the position",
    "this position",
    "the job",
    "the opening",
    "your application",
    "you applied",
    "applied for",
    "your resume",
    "your résumé",
    "your cv",
    "tell me about yourself",
    "walk me through",
    "your experience",
    "your background",
    "years of experience",
    "a time when",
    "a time you",
    "tell me about a time",
    "describe a situation",
    "how would you handle",
    "what would you do if",
    "your strengths",
    "your weakness",
    "your greatest",
    "why do you want",
    "why are you interested in",
    "why this company",
    "salary expectations",
    "expected salary",
    "pay expectations",
    "notice period",
    "when could you start",
    "when can you start",
    "start date",
    "the candidate",
    "hiring manager",
    "hiring team",
    "recruiter",
    "recruiting",
    "next round",
    "technical interview",
    "panel interview",
    "references",
    "work authorization",
    "authorized to work",
    "right to work",
    "willing to relocate",
    "shifts",
    "availability to work",
    "position",
    "positions",
    "experience",
    "application",
    "posting",
    "hiring",
    "full-time",
    "part-time",
    "recruiting assistant",
    "tell me about a",
    "how would you approach",
    "how would you find",
    "how would you deal",
    "how do you handle",
    "how do you deal",
    "how do you approach",
    "describe your",
    "what's the difference between",
    "why do you want to work",
    "answer from your own",
    "your own knowledge",
    "in a team",
    "thanks for joining",
    "give more detail",
    "your previous role",
    "your last role",
    "your current role",
];

/// The next step of a hiring process, offered on a screening call.
pub const NEXT_ROUND: &[&str] = &[
    "interview",
    "next round",
    "ride-along",
    "road test",
    "trial shift",
    "working interview",
    "panel",
    "onsite",
    "on-site",
    "assessment",
];

/// What a candidate says about their own work history.
pub const CANDIDATE: &[&str] = &[
    "i applied",
    "my last job",
    "my last role",
    "my last position",
    "my previous job",
    "my previous role",
    "my current role",
    "my current job",
    "in my current",
    "i worked as",
    "i've worked",
    "i have worked",
    "i've been working",
    "years of experience",
    "my experience",
    "i was responsible",
    "i managed",
    "i led",
    "my resume",
    "my manager",
    "my team",
    "i graduated",
    "my degree",
    "i'm certified",
    "my license",
    "my licence",
    "there was a time",
    "in my previous",
    "years in",
    "i learned",
    "in my last",
    "at my last",
    "at my previous",
    "i designed",
    "i built",
    "i implemented",
];

/// The first words of a "yes".
pub const AFFIRM: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "ya",
    "sure",
    "ok",
    "okay",
    "alright",
    "all right",
    "absolutely",
    "definitely",
    "of course",
    "certainly",
    "please",
    "perfect",
    "great",
    "sounds good",
    "sounds great",
    "sounds perfect",
    "that works",
    "that'll work",
    "that would work",
    "that's fine",
    "that is fine",
    "that's good",
    "works for me",
    "fine",
    "good",
    "go ahead",
    "do it",
    "please do",
    "let's do it",
    "let's do that",
    "why not",
    "i'd like that",
    "i would like that",
    "that would be great",
    "that'd be great",
    "that'd be good",
    "is good",
    "is fine",
    "is ok",
    "is okay",
    "deal",
    "book it",
    "put me down",
    "go for it",
];

/// The first words of a "no" (each also a refusal when it answers an offer).
pub const DECLINE: &[&str] = &[
    "no",
    "nah",
    "nope",
    "not really",
    "i don't think so",
    "not right now",
    "not at the moment",
    "not today",
    "no thanks",
    "no thank you",
    "i'm good",
    "i'll pass",
    "hmm, no",
];

/// An agent offering a visit, slot or appointment.
pub const OFFER_BOOKING: &[&str] = &[
    "book",
    "appointment",
    "schedule",
    "slot",
    "opening",
    "availability",
    "come in",
    "come by",
    "stop by",
    "test ride",
    "test drive",
    "viewing",
    "showing",
    "visit",
    "tour",
    "demo",
    "consultation",
    "pencil you in",
    "put you down for",
    "reserve",
    "reservation",
    "a table",
    "morning or afternoon",
    "send a technician",
    "send someone",
    "come out",
    "bring it in",
    "drop it off",
    "what day",
    "what time",
    "which day",
    "when works",
    "when would",
    "when can you",
    "earliest",
    "first available",
    "next available",
    "openings",
    "fit you in",
    "get you in",
    "onboarding call",
    "walkthrough",
    "meeting",
];

/// An agent offering to sell, order, sign up or hold something for the caller.
pub const OFFER_PURCHASE: &[&str] = &[
    "go ahead",
    "place the order",
    "place an order",
    "order it",
    "order one",
    "put you down for",
    "reserve it",
    "hold it for you",
    "put a hold",
    "put it aside",
    "would you like to buy",
    "like to purchase",
    "ready to buy",
    "sign you up",
    "set you up with",
    "get you set up",
    "get that started",
    "start the paperwork",
    "the paperwork",
    "move forward",
    "deposit",
    "finalize",
    "renew",
    "reactivate",
    "upgrade you",
    "switch you",
    "bind the policy",
    "bind that",
    "start the policy",
    "start your policy",
    "add it to your",
    "lock in",
    "take it",
    "want it",
    "want them",
    "put one aside",
    "order the",
    "order that",
    "shall i order",
    "want me to order",
    "should i order",
    "put one on hold",
    "put it on hold",
    "hold one",
    "put that through",
    "put it through",
    "ring that up",
    "place that",
    "confirm the order",
    "put the order in",
    "shall i book that",
];

/// An agent offering to call back.
pub const OFFER_CALL_BACK: &[&str] = &[
    "call you back",
    "give you a call",
    "call you",
    "ring you",
    "reach you",
    "best time to call",
    "better time to call",
    "a good time to call",
    "follow up with you",
    "get back to you",
    "have someone call",
    "have a manager call",
    "have the manager call",
    "called you back",
    "call you later",
    "call you tomorrow",
    "call back",
];

/// Side questions: a "no" to them is not a "no" to the offer.
pub const SIDE_QUESTION: &[&str] = &[
    "anything else",
    "something else",
    "also",
    "as well",
    "in addition",
    "add ",
    "add-on",
    "extra",
    "accessor",
    "while you're",
    "by the way",
    "newsletter",
    "mailing list",
    "a receipt",
    "any questions",
    "other questions",
    "questions for me",
];

/// An agent owning a fault: what the caller said just before was a grievance.
pub const AGENT_APOLOGY: &[&str] = &[
    "i apologize",
    "i apologise",
    "we apologize",
    "my apologies",
    "our apologies",
    "our mistake",
    "our fault",
    "our error",
    "sorry for the inconvenience",
    "sorry for the trouble",
    "sorry about the wait",
    "sorry about the delay",
    "that's not okay",
    "that is not okay",
    "that's not acceptable",
    "shouldn't have happened",
    "should not have happened",
    "should have been asked",
    "should have called",
    "understand your frustration",
    "must have been frustrating",
    "that's frustrating",
    "how frustrating",
    "how upsetting",
    "i understand how upsetting",
];

/// Praise that, beside a grievance, is sarcasm ("great, the highlight of my week").
pub const PRAISE: &[&str] = &[
    "great",
    "wonderful",
    "fantastic",
    "brilliant",
    "perfect",
    "awesome",
    "lovely",
    "amazing",
    "terrific",
    "fabulous",
    "excellent",
    "love",
    "nice",
    "thanks a lot",
    "thanks so much",
    "just what i needed",
    "highlight",
];

/// Said only in sarcasm.
pub const SARCASM: &[&str] = &[
    "highlight of my",
    "just what i needed",
    "just what i need",
    "thanks for nothing",
    "thanks a lot for nothing",
    "yeah right",
    "oh great",
    "oh wonderful",
    "oh perfect",
    "oh fantastic",
    "oh brilliant",
    "oh good",
    "oh joy",
    "just great",
    "just perfect",
    "just wonderful",
    "just fantastic",
    "big surprise",
    "what a surprise",
    "color me surprised",
    "colour me surprised",
    "shocking",
    "how convenient",
    "lucky me",
    "love that for me",
    "love that",
    "can't wait to",
    "my favorite thing",
    "my favourite thing",
    "of course it",
    "as usual",
    "classic",
    "real nice",
    "real great",
    "fun times",
    "good times",
    "my day",
    "my week",
    "we almost had",
    "so that was fun",
    "that was fun",
    "well that was fun",
    "outdoing yourselves",
    "outdone yourselves",
    "sure it is",
    "sure you will",
    "sure you are",
    "sure you did",
    "of course you did",
    "of course you are",
    "way to go",
    "bang-up job",
    "stellar job",
    "real professional",
];

/// Words that make praise beside them sarcastic: the thing went wrong again, or late.
pub const GRIEVANCE_CUES: &[&str] = &[
    "again",
    "still",
    "another",
    "waiting",
    "waited",
    "late",
    "broke",
    "broken",
    "charged",
    "hours",
    "nobody",
    "no one",
    "never",
    "cancel",
    "cancelled",
    "canceled",
    "third",
    "wrong",
    "lost",
    "missed",
    "forgot",
    "fee",
    "loaner",
    "every evening",
    "every night",
    "every day",
    "every morning",
    "for a week",
    "weeks for",
    "months for",
    "weeks now",
    "months now",
    "weeks later",
    "all week",
    "a week",
    "days",
];

/// Feelings that make a sentence a grievance.
pub const NEGATIVE_FEELING: &[&str] = &[
    "annoyed",
    "annoying",
    "angry",
    "upset",
    "furious",
    "pissed",
    "irritated",
    "irritating",
    "nightmare",
    "mess",
    "hassle",
    "ridiculous",
    "absurd",
    "are you kidding",
    "you're kidding",
    "kidding me",
];

/// What politeness is made of: a sentence of only these (and fillers) is a pleasantry and
/// weighs little in the caller's sentiment.
pub const POLITE_WORDS: &[&str] = &[
    "thanks",
    "thank",
    "you",
    "so",
    "much",
    "very",
    "really",
    "great",
    "perfect",
    "ok",
    "okay",
    "alright",
    "all",
    "right",
    "cool",
    "awesome",
    "wonderful",
    "lovely",
    "good",
    "fine",
    "sure",
    "yes",
    "yeah",
    "yep",
    "yup",
    "bye",
    "goodbye",
    "have",
    "a",
    "nice",
    "day",
    "evening",
    "weekend",
    "night",
    "one",
    "too",
    "cheers",
    "appreciate",
    "it",
    "that's",
    "that",
    "sounds",
    "works",
    "for",
    "me",
    "hi",
    "hello",
    "hey",
    "no",
    "problem",
    "worries",
    "excellent",
    "will",
    "do",
    "see",
    "then",
    "got",
    "it's",
    "bye-bye",
    "take",
    "care",
    "again",
    "the",
    "help",
    "helpful",
    "oh",
    "well",
    "great,",
    "and",
    "is",
    "was",
    "be",
    "dear",
    "man",
    "mate",
    "buddy",
    "sir",
    "ma'am",
    "madam",
    "well",
    "i",
    "i'll",
    "we",
    "we'll",
    "there",
    "you've",
    "been",
    "super",
    "brilliant",
    "fantastic",
    "amazing",
    "nice,",
    "lot",
    "way",
    "gotcha",
    "understood",
    "noted",
    "of",
    "course",
    "definitely",
    "absolutely",
    "indeed",
    "good,",
    "this",
    "morning",
    "afternoon",
    "talk",
    "soon",
    "later",
    "to",
    "know",
    "your",
    "time",
];

/// The order intents are listed in when equally sure.
const ORDER: [&str; 10] = [
    "interview",
    "purchase",
    "pricing",
    "booking",
    "support",
    "complaint",
    "call_back",
    "not_interested",
    "wrong_number",
    "voicemail",
];

pub fn rank(name: &str) -> usize {
    ORDER.iter().position(|n| *n == name).unwrap_or(usize::MAX)
}

/// Who commits to something, said by the one who will do it: "I'll send you a quote".
const COMMITMENTS: [&str; 12] = [
    "i'll ",
    "i will ",
    "we'll ",
    "we will ",
    "let me ",
    "i can ",
    "we can ",
    "i'm going to ",
    "we're going to ",
    "i am going to ",
    "i'd be happy to ",
    "i'll go ahead and ",
];

/// Someone on the business's side the agent commits ("the technician will call first").
const THIRD_PARTIES: [&str; 9] = [
    "he'll ",
    "she'll ",
    "they'll ",
    "someone will ",
    "somebody will ",
    "the technician will ",
    "the mechanic will ",
    "the manager will ",
    "the doctor will ",
];

/// A request to the other side: the caller asking the business ("can you call me back").
const REQUESTS: [&str; 5] = [
    "can you ",
    "could you ",
    "please ",
    "would you ",
    "i need you to ",
];

const ACTION_VERBS: [&str; 76] = [
    "follow up",
    "get back",
    "set it up",
    "set that up",
    "set up",
    "look into",
    "drop off",
    "drop it off",
    "pick up",
    "pick it up",
    "come in",
    "come by",
    "stop by",
    "swing by",
    "come back",
    "fill out",
    "talk to",
    "speak to",
    "think about",
    "make sure",
    "make a note",
    "pass",
    "be there",
    "send",
    "email",
    "text",
    "call",
    "ring",
    "phone",
    "book",
    "schedule",
    "reserve",
    "arrange",
    "confirm",
    "ship",
    "order",
    "refund",
    "forward",
    "transfer",
    "escalate",
    "check",
    "put",
    "hold",
    "have",
    "bring",
    "pay",
    "sign",
    "upload",
    "flag",
    "waive",
    "credit",
    "mail",
    "keep",
    "update",
    "remove",
    "close",
    "process",
    "cancel",
    "start",
    "file",
    "reassign",
    "note",
    "get",
    "take",
    "tell",
    "give",
    "leave",
    "submit",
    "request",
    "review",
    "add",
    "fix",
    "come",
    "let you know",
    "let us know",
    "let",
];

/// Verbs "let me …" uses for what is done there and then ("let me check"), not a next step.
const ON_THE_SPOT: [&str; 9] = [
    "check",
    "put",
    "have",
    "think about",
    "get",
    "take",
    "see",
    "let",
    "make sure",
];

/// An agent confirming a booking: the booking is a next step for both sides.
const BOOKED: [&str; 16] = [
    "you're booked",
    "you are booked",
    "booked for",
    "i've booked you",
    "i have booked you",
    "booked you in",
    "booked you for",
    "i have you down",
    "i've got you down",
    "i've put you down",
    "you're all set for",
    "you're scheduled",
    "you're confirmed",
    "you're all set",
    "see you then",
    "confirmed for",
];

/// The next steps either side committed to, as short phrases: the business's own as
/// imperatives ("Send a quote by Friday"), the caller's as "Caller will …" ("Caller will
/// call back when ready"), a confirmed booking as "Booked …". At most ten, each once.
pub fn action_items(turns: &[(Speaker, &str)]) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    let mut push = |item: String| {
        // An agent's "Booked for Thursday at three" replaces the caller's "Thursday" taken
        // from the same exchange.
        if item.starts_with("Booked for ") {
            items.retain(|i| !i.starts_with("Booked: "));
        }
        let key = gist(&item);
        if item.split_whitespace().count() >= 2
            && !items.iter().any(|i| gist(i) == key)
            && items.len() < 10
        {
            items.push(item);
        }
    };
    // The caller's last words naming a time: what an agent's bare "You're booked" books.
    let mut time_said = String::new();
    let mut slot_offered = false;
    let mut slot_asked = false;
    for (speaker, turn) in turns {
        if *speaker == Speaker::Other {
            continue;
        }
        for sentence in sentences(turn) {
            let lower = normalize(sentence);
            // Keep the speaker's capitals ("Friday") when normalising moved no byte.
            let source = if lower.len() == sentence.len() && !sentence.contains(" um") {
                sentence.to_owned()
            } else {
                lower.clone()
            };
            if *speaker == Speaker::User
                && let Some(time) = time_phrase(&source)
            {
                time_said = time;
                // A slot the agent offered, taken: booked, whether or not confirmed.
                if slot_offered {
                    push(format!("Booked: {time_said}"));
                }
                slot_asked = lower.contains('?') && !has_any(&lower, CALL_BACK);
            }
            if *speaker == Speaker::Agent {
                // The caller asked for a time and the agent agreed: "Six tomorrow works."
                if slot_asked
                    && has_any(&lower, &AGREED)
                    && let Some(time) = time_phrase(&source)
                {
                    push(format!("Booked: {time}"));
                }
                slot_asked = false;
                slot_offered =
                    mentions_time(&lower) && (lower.contains('?') || lower.contains(" or "));
            }
            if *speaker == Speaker::Agent {
                if let Some((phrase, at)) = BOOKED
                    .iter()
                    .find_map(|p| find_phrase(&lower, p).first().copied().map(|at| (p, at)))
                {
                    let rest = source.get(at + phrase.len()..).unwrap_or_default();
                    let when = tidy(rest, 8);
                    if !when.is_empty() && mentions_time(&when.to_lowercase()) {
                        push(format!("Booked {when}"));
                    } else if !time_said.is_empty() {
                        push(format!("Booked: {time_said}"));
                    }
                }
                // "It'll be ready in twenty minutes."
                for ready in ["it'll be ready", "it will be ready", "will be ready"] {
                    if let Some(&at) = find_phrase(&lower, ready).first() {
                        let rest = tidy(source.get(at + ready.len()..).unwrap_or_default(), 8);
                        push(format!("Have it ready {rest}").trim_end().to_owned());
                        break;
                    }
                }
            }
            let third = THIRD_PARTIES
                .iter()
                .filter(|_| *speaker == Speaker::Agent)
                .map(|m| (m, true));
            let markers = COMMITMENTS.iter().map(|m| (m, true)).chain(third).chain(
                REQUESTS
                    .iter()
                    .filter(|_| *speaker == Speaker::User)
                    .map(|m| (m, false)),
            );
            for (marker, own) in markers {
                for at in find_phrase(&lower, marker.trim_end()) {
                    // "The app won't let me book": no one commits to anything.
                    if negated(&lower, at) {
                        continue;
                    }
                    let start = at + marker.len();
                    let (Some(rest), Some(original)) = (lower.get(start..), source.get(start..))
                    else {
                        continue;
                    };
                    let skipped = rest.len() - rest.trim_start().len();
                    let rest = rest.trim_start();
                    let Some(verb) = ACTION_VERBS
                        .iter()
                        .find(|v| find_phrase(rest, v).first() == Some(&0))
                    else {
                        continue;
                    };
                    if marker.starts_with("let me") && ON_THE_SPOT.contains(verb) {
                        continue;
                    }
                    // "I can call" from the caller is an offer, not a commitment.
                    if *speaker == Speaker::User && own && marker.contains("can") {
                        continue;
                    }
                    let Some(object) = original.get(skipped + verb.len()..) else {
                        continue;
                    };
                    let by_caller = *speaker == Speaker::User && own;
                    if let Some(item) = imperative(verb, object, by_caller) {
                        push(item);
                    }
                }
            }
        }
    }
    items
}

/// An item's words without the small ones, to tell "Call back tomorrow after six" and "Call
/// tomorrow after six" for the same step.
fn gist(item: &str) -> Vec<String> {
    item.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| {
            ![
                "back", "the", "a", "an", "you", "me", "caller", "caller's", "will", "booked",
            ]
            .contains(&w.as_str())
                && !w.is_empty()
        })
        .collect()
}

/// An agent agreeing to the time the caller asked for.
const AGREED: [&str; 10] = [
    "works",
    "is fine",
    "that's fine",
    "see you",
    "perfect",
    "sure",
    "no problem",
    "we can do",
    "i can do",
    "absolutely",
];

/// The time named in `source`, from its first word that names one: "Yeah, Thursday at four
/// works." → "Thursday at four".
fn time_phrase(source: &str) -> Option<String> {
    let words: Vec<&str> = source.split_whitespace().collect();
    // What names a time in a run of these words names one in all of them, joined the same way:
    // most sentences name none, and are answered without trying each word and pair.
    if !names_time(&words) {
        return None;
    }
    time_in(&words)
}

/// Whether `words`, joined by single spaces, name a time (closing punctuation aside).
fn names_time(words: &[&str]) -> bool {
    mentions_time(
        words
            .join(" ")
            .to_lowercase()
            .trim_end_matches([',', '.', '!', '?']),
    )
}

/// The time named in `words`, from the first word that names one, tried word by word.
fn time_in(words: &[&str]) -> Option<String> {
    let run = |from: usize, to: usize| names_time(&words[from..to.min(words.len())]);
    // A word that names a time, or starts a pair that does only together ("at ten", "three
    // fifteen"), not "you" before "tomorrow".
    let from = (0..words.len()).find(|&i| run(i, i + 1) || run(i, i + 2) && !run(i + 1, i + 2))?;
    let mut time = tidy(&words[from..].join(" "), 6);
    while let Some((head, last)) = time.rsplit_once(' ') {
        if !AFTER_TIME.contains(&last.to_lowercase().as_str()) {
            break;
        }
        time = head.to_owned();
    }
    (!time.is_empty()).then_some(time)
}

/// Words after a time that are not part of it ("Thursday works", "ten is fine").
const AFTER_TIME: [&str; 14] = [
    "works", "work", "is", "good", "fine", "great", "then", "please", "perfect", "sounds",
    "that's", "ok", "okay", "better",
];

/// Words a next step should not end on ("… a quote for the Domane with").
const DANGLING: [&str; 20] = [
    "with", "for", "to", "and", "or", "the", "a", "an", "of", "at", "by", "about", "your", "my",
    "our", "so", "that", "if", "just", "from",
];

/// At most `max` words of `rest`, up to the end of its clause, without a dangling word.
fn tidy(rest: &str, max: usize) -> String {
    let mut words: Vec<&str> = Vec::new();
    for word in rest.split_whitespace() {
        let clean = word.trim_end_matches([',', '.', '!', '?', ';', ':']);
        if [
            "and", "but", "so", "because", "if", "then", "which", "while",
        ]
        .iter()
        .any(|c| clean.eq_ignore_ascii_case(c))
            && words.len() >= 2
        {
            break;
        }
        if clean.chars().any(char::is_alphanumeric) {
            words.push(clean);
        }
        if word.ends_with([',', ';', ':']) && words.len() >= 2 || words.len() == max {
            break;
        }
    }
    while words
        .last()
        .is_some_and(|w| DANGLING.iter().any(|d| w.eq_ignore_ascii_case(d)))
    {
        words.pop();
    }
    words.join(" ")
}

/// "send" + " you a quote by friday." → "Send a quote by friday"; the caller's own
/// "call" + " back when I'm ready" → "Caller will call back when I'm ready".
fn imperative(verb: &str, rest: &str, by_caller: bool) -> Option<String> {
    let rest = rest.trim_start();
    if verb.starts_with("let ") {
        let who = if by_caller {
            "the business"
        } else {
            "the caller"
        };
        let object = tidy(rest, 10);
        let phrase = format!("let {who} know {object}");
        let phrase = phrase.trim_end();
        return Some(if by_caller {
            format!("Caller will {phrase}")
        } else {
            capitalize(phrase)
        });
    }
    // "send you", "call me back": the pronoun is the other side; drop it.
    let rest = ["you guys ", "you all ", "you ", "me ", "us ", "you,", "me,"]
        .iter()
        .find_map(|p| {
            rest.get(..p.len())
                .filter(|head| head.eq_ignore_ascii_case(p))
                .map(|_| &rest[p.len()..])
        })
        .unwrap_or(rest);
    let mut object = tidy(rest, 10);
    if !by_caller {
        // The business's to-do, told from its side: "call you" → "call the caller".
        object = object
            .split(' ')
            .map(|w| match w.to_lowercase().as_str() {
                "you" => "the caller",
                "your" => "the caller's",
                "yours" => "the caller's",
                "me" => "the caller",
                "my" => "the caller's",
                _ => w,
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    if by_caller {
        // The caller's own words, told about them: "when I'm ready" → "when they're ready".
        object = object
            .split(' ')
            .map(|w| match w.to_lowercase().as_str() {
                "i" => "they",
                "i'm" => "they're",
                "i'll" => "they'll",
                "i've" => "they've",
                "my" => "their",
                "me" => "them",
                "myself" => "themselves",
                "we" => "they",
                "we're" => "they're",
                "we'll" => "they'll",
                "our" => "their",
                "us" => "them",
                _ => w,
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    // "I'll pass." commits to nothing; "I'll call back." does.
    if object.is_empty() && !VERBS_ALONE.contains(&verb) {
        return None;
    }
    let phrase = if object.is_empty() {
        verb.to_owned()
    } else {
        format!("{verb} {object}")
    };
    Some(if by_caller {
        format!("Caller will {phrase}")
    } else {
        capitalize(&phrase)
    })
}

/// Verbs that are a next step without an object.
const VERBS_ALONE: [&str; 12] = [
    "call",
    "ring",
    "phone",
    "come",
    "come in",
    "come by",
    "stop by",
    "swing by",
    "come back",
    "follow up",
    "get back",
    "be there",
];

/// Buying interest short of a decision: shopping, comparing, planning ("we'd rather buy in
/// the spring", "do you carry…"). Not an intent, but a reason a lead is warm.
pub const INTEREST: &[&str] = &[
    "buy",
    "buying",
    "purchase",
    "interested in",
    "looking for a",
    "looking for an",
    "looking at",
    "looking to",
    "thinking about",
    "thinking of",
    "considering",
    "in the market",
    "shopping for",
    "shopping around",
    "compare",
    "comparing",
    "options",
    "what do you have",
    "do you have any",
    "do you carry",
    "do you sell",
    "do you offer",
    "do you do",
    "do you guys do",
    "how does it work",
    "how does that work",
    "send me",
    "email me",
    "more information",
    "more info",
    "brochure",
    "listings",
];

/// Something the caller already has or had done: a complaint about it also needs support.
pub const OWNED: &[&str] = &[
    "my car",
    "my bike",
    "my account",
    "my policy",
    "my bill",
    "my invoice",
    "my order",
    "my claim",
    "my card",
    "my appointment",
    "my prescription",
    "my refill",
    "my plates",
    "my tag",
    "my toilet",
    "my heat",
    "my furnace",
    "my unit",
    "my crown",
    "my tooth",
    "my insurance",
    "i bought",
    "we bought",
    "i paid",
    "we paid",
    "autopay",
    "the invoice",
    "the bill",
    "the repair",
    "the claim",
    "the refill",
    "your plumber",
    "your technician",
    "your mechanic",
    "your guy",
    "the technician",
    "the mechanic",
    "it's on",
    "the app",
    "the system",
    "prescription",
    "refill",
    "i ordered",
    "we ordered",
    "my delivery",
    "the delivery",
];

/// An agent stating a price: a caller reacting to it discusses pricing.
pub const PRICE_STATED: &[&str] = &[
    "dollars",
    "dollar",
    "$",
    "bucks",
    "a month",
    "per month",
    "a year",
    "per year",
    "percent",
    "fee",
    "costs",
    "price",
    "premium",
    "deductible",
    "copay",
    "hundred",
    "thousand",
    "grand",
];

/// How a caller reacts to a price they heard.
pub const PRICE_REACTION: &[&str] = &[
    "reasonable",
    "fair",
    "steep",
    "expensive",
    "pricey",
    "affordable",
    "cheap",
    "worth",
    "budget",
    "not bad",
    "that's fine",
    "that's okay",
    "that's ok",
    "less than",
    "more than",
    "doable",
    "manageable",
    "a lot",
    "too much",
    "pay",
    "hundred",
    "thousand",
    "dollars",
    "dollar",
    "bucks",
    "okay",
    "ok",
    "hmm",
    "wow",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// `time_phrase` answers a sentence that names no time as a whole at once; it finds the
    /// same time as trying each word and pair of the sentence, whatever the words and the
    /// space between them.
    #[test]
    fn a_time_is_found_as_by_trying_each_word_and_pair() {
        let word_by_word = |source: &str| time_in(&source.split_whitespace().collect::<Vec<_>>());
        let sentences = [
            "Yeah, Thursday at four works.",
            "At ten?",
            "Could we do\tat  ten, please",
            "I'll swing by at 3:30 tomorrow",
            "Maybe three fifteen is better.",
            "Does 10am work for you!",
            "I want ten bikes, not a time.",
            "You tomorrow.",
            "Tuesday's fine",
            "Nothing here at all",
            "",
            "Around 7 pm, or later",
            "Next week, Monday morning",
        ];
        for sentence in sentences {
            assert_eq!(
                time_phrase(sentence),
                word_by_word(sentence),
                "{sentence:?}"
            );
        }
        assert_eq!(
            time_phrase("Yeah, Thursday at four works.").as_deref(),
            Some("Thursday at four")
        );
        assert_eq!(time_phrase("Nothing here at all"), None);
    }

    #[test]
    fn action_items_become_imperatives() {
        let items = action_items(&[
            (
                Speaker::Agent,
                "Great, I'll send you a quote by Friday and we can talk then.",
            ),
            (
                Speaker::User,
                "Could you call me back on Tuesday afternoon?",
            ),
            (Speaker::Agent, "I'll send you a quote by Friday."),
        ]);
        assert_eq!(
            items,
            vec!["Send a quote by Friday", "Call back on Tuesday afternoon"]
        );
    }

    #[test]
    fn both_sides_commitments_are_kept_and_read_cleanly() {
        let items = action_items(&[
            (
                Speaker::Agent,
                "Let me check. I'll text you a quote for the Domane AL 5 in 56 with the pedals.",
            ),
            (Speaker::User, "Thanks. I'll call back when I'm ready."),
            (
                Speaker::Agent,
                "Perfect, you're booked for Thursday at two.",
            ),
            (Speaker::User, "I'll bring the old bike in, too."),
        ]);
        assert_eq!(
            items,
            vec![
                "Text a quote for the Domane AL 5 in 56",
                "Caller will call back when they're ready",
                "Booked for Thursday at two",
                "Caller will bring the old bike in",
            ]
        );
    }

    #[test]
    fn an_offered_slot_taken_is_booked_once_and_a_complaint_commits_no_one() {
        let items = action_items(&[
            (
                Speaker::Agent,
                "We have Tuesday at nine or Thursday at three.",
            ),
            (Speaker::User, "Thursday at three works."),
            (
                Speaker::Agent,
                "Great, you're booked for Thursday at three.",
            ),
            (Speaker::User, "The app won't let me book classes though."),
            (Speaker::User, "Can you call me back tomorrow after six?"),
            (Speaker::Agent, "Sure, I'll call you tomorrow after six."),
        ]);
        assert_eq!(
            items,
            vec![
                "Booked for Thursday at three",
                "Call back tomorrow after six"
            ]
        );
        let items = action_items(&[
            (
                Speaker::Agent,
                "Would Monday at four work for the trial shift?",
            ),
            (Speaker::User, "Monday at four is fine."),
        ]);
        assert_eq!(items, vec!["Booked: Monday at four"]);
        let items = action_items(&[(Speaker::User, "Thanks, but I'll pass.")]);
        assert!(items.is_empty(), "{items:?}");
    }
}
