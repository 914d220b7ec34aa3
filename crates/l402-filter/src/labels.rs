//! Fieldless enums whose every variant has a stable label (metric names, log fields), declared
//! with the list of all their variants from one table, so that no variant can miss its counter.

macro_rules! labelled {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident => $label:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant,)*
        }

        impl $name {
            /// Every variant, in declaration order (`variant as usize` is its position).
            pub const ALL: &'static [$name] = &[$(Self::$variant,)*];

            pub fn label(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)*
                }
            }
        }
    };
}

pub(crate) use labelled;
