//! The EPS code tables: each a Rust enum with its code and display text.

use serde::{Deserialize, Serialize};

/// A coded value as the API shows it: `{"code":"0002","display":"With Dispenser"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Coded {
    pub code: String,
    pub display: String,
}

macro_rules! code_table {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $code:literal, $display:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant,)+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code,)+ }
            }

            pub fn display(self) -> &'static str {
                match self { $($name::$variant => $display,)+ }
            }

            /// Looks a code up in the table; `None` for a code the table does not have.
            pub fn parse(code: &str) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }

            pub fn coded(self) -> Coded {
                Coded { code: self.code().to_owned(), display: self.display().to_owned() }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{} {}", self.code(), self.display())
            }
        }
    };
}

code_table! {
    /// Prescription status (EPS Task.businessStatus).
    Status {
        AwaitingReleaseReady = "0000", "Awaiting Release Ready";
        ToBeDispensed = "0001", "To Be Dispensed";
        WithDispenser = "0002", "With Dispenser";
        WithDispenserActive = "0003", "With Dispenser - Active";
        Expired = "0004", "Expired";
        Cancelled = "0005", "Cancelled";
        Dispensed = "0006", "Dispensed";
        NotDispensed = "0007", "Not Dispensed";
        Claimed = "0008", "Claimed";
        NoClaimed = "0009", "No-Claimed";
        RepeatDispenseFutureInstance = "9000", "Repeat Dispense future instance";
        FutureDated = "9001", "Prescription future instance";
        PendingCancellation = "9005", "Pending cancellation";
    }
}

code_table! {
    /// Line-item status.
    ItemStatus {
        FullyDispensed = "0001", "Item fully dispensed";
        NotDispensed = "0002", "Item not dispensed";
        PartiallyDispensed = "0003", "Item dispensed - partial";
        NotDispensedOwing = "0004", "Item not dispensed - owing";
        Cancelled = "0005", "Item Cancelled";
        Expired = "0006", "Expired";
        ToBeDispensed = "0007", "Item to be dispensed";
        WithDispenser = "0008", "Item with dispenser";
    }
}

code_table! {
    /// Why an item was not dispensed.
    NotDispensedReason {
        NotRequired = "0001", "Not required as instructed by the patient";
        ClinicallyUnsuitable = "0002", "Clinically unsuitable";
        OwingsNote = "0003", "Owings note issued to patient";
        PrescriptionCancellation = "0004", "Prescription cancellation";
        CancellationDueToDeath = "0005", "Prescription cancellation due to death";
        IllegalNhsPrescription = "0006", "Illegal NHS prescription";
        OutOfScope = "0007", "Prescribed out of scope item";
        Expired = "0008", "Item or prescription expired";
        NotAllowedOnFp10 = "0009", "Not allowed on FP10";
        PatientDidNotCollect = "0010", "Patient did not collect medication";
        PurchasedOverTheCounter = "0011", "Patient purchased medication over the counter";
    }
}

code_table! {
    /// Why a dispenser returned a prescription to the central store.
    ReturnReason {
        PatientNonAttendance = "0001", "Patient non-attendance";
        UnableToDispense = "0002", "Unable to dispense";
        PatientRequestedRelease = "0003", "Patient requested release";
        AnotherDispenserRequested = "0004", "Another dispenser requested release on behalf of the patient";
        InvalidSignature = "0005", "Invalid digital signature";
        VersionProblem = "0006", "Version problem";
        InvalidOrUnreadable = "0007", "Otherwise invalid or unreadable";
        Expired = "0008", "Expired";
    }
}

code_table! {
    /// Why a prescriber cancels.
    CancelReason {
        PrescribingError = "0001", "Prescribing Error";
        ClinicalContraindication = "0002", "Clinical contra-indication";
        ChangeToMedicationTreatmentRegime = "0003", "Change to medication treatment regime";
        ClinicalGrounds = "0004", "Clinical grounds";
        AtThePatientsRequest = "0005", "At the Patient's request";
        AtThePharmacistsRequest = "0006", "At the Pharmacist's request";
        NotificationOfDeath = "0007", "Notification of Death";
        PatientDeducted = "0008", "Patient deducted - other reasons";
        PatientDeductedRegistered = "0009", "Patient deducted - registered with new practice";
    }
}

code_table! {
    /// The answer to a cancellation request.
    CancelResponse {
        WithDispenser = "R-0002", "Prescription/item was with dispenser. Marked for cancellation";
        WithDispenserActive = "R-0003", "Prescription/item was with dispenser active. Marked for cancellation";
        AlreadyDispensed = "R-0004", "Prescription/item was dispensed. Not cancelled";
        Expired = "R-0005", "Prescription/item had expired. Not cancelled";
        AlreadyCancelled = "R-0006", "Prescription/item had already been cancelled";
        AnotherPrescriber = "R-0007", "Cancellation already requested by another prescriber";
        NotFound = "R-0008", "Prescription/item not found";
        NotDispensed = "R-0010", "Prescription/item was not dispensed. Not cancelled";
        CannotProcess = "R-5000", "Unable to process message";
    }
}

code_table! {
    /// Acute, repeat or electronic repeat dispensing.
    TreatmentType {
        Acute = "0001", "Acute";
        Repeat = "0002", "Repeat";
        RepeatDispensing = "0003", "Repeat Dispensing";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_is_unique() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(
            all: &[T],
            code: fn(T) -> &'static str,
            parse: fn(&str) -> Option<T>,
        ) {
            let mut seen = std::collections::HashSet::new();
            for value in all {
                assert!(seen.insert(code(*value)));
                assert_eq!(parse(code(*value)), Some(*value));
            }
            assert_eq!(parse("nope"), None);
        }
        check(Status::ALL, Status::code, Status::parse);
        check(ItemStatus::ALL, ItemStatus::code, ItemStatus::parse);
        check(
            NotDispensedReason::ALL,
            NotDispensedReason::code,
            NotDispensedReason::parse,
        );
        check(ReturnReason::ALL, ReturnReason::code, ReturnReason::parse);
        check(CancelReason::ALL, CancelReason::code, CancelReason::parse);
        check(
            CancelResponse::ALL,
            CancelResponse::code,
            CancelResponse::parse,
        );
        check(
            TreatmentType::ALL,
            TreatmentType::code,
            TreatmentType::parse,
        );
        assert_eq!(Status::ALL.len(), 13);
        assert_eq!(NotDispensedReason::ALL.len(), 11);
        assert_eq!(ReturnReason::ALL.len(), 8);
    }
}

code_table! {
    /// A dispenser endorsement on a claimed item (EPS `medicationdispense-endorsement`): how the
    /// pharmacy is to be reimbursed beyond the drug tariff price. `NDEC` when there is none.
    DispenserEndorsement {
        BrokenBulk = "BB", "Broken Bulk";
        Extemporaneous = "ED", "Extemporaneously dispensed";
        InvoicePrice = "IP", "Invoice Price for less common products or special items";
        MeasuredAndFitted = "MF", "Measured and Fitted";
        NoCheaperStock = "NCSO", "No Cheaper Stock Obtainable";
        None = "NDEC", "No Dispenser Endorsement Code";
        OutOfPocket = "XP", "Out of Pocket Expenses";
        PrescriberContacted = "PC", "Prescriber Contacted";
        PrescriberNotContacted = "PNC", "Prescriber Not Contacted";
        RebateClaimed = "RC", "Rebate Claimed";
        SeriousShortageProtocol = "SSP", "Serious Shortage Protocol";
        SpecialLicence = "SP", "Special License";
        ZeroDiscount = "ZD", "Zero Discount (List B only)";
    }
}

code_table! {
    /// The patient's prescription-charge exemption (EPS `prescription-charge-exemption`); `0001`
    /// means the patient paid the charges.
    ChargeExemption {
        PaidCharges = "0001", "Patient has paid appropriate charges";
        Under16 = "0002", "is under 16 years of age";
        FullTimeEducation = "0003", "is 16, 17 or 18 and in full-time education";
        Over60 = "0004", "is 60 years of age or over";
        Maternity = "0005", "has a valid maternity exemption certificate";
        Medical = "0006", "has a valid medical exemption certificate";
        PrePayment = "0007", "has a valid prescription pre-payment certificate";
        WarPension = "0008", "has a War Pension exemption certificate";
        Hc2 = "0009", "is named on a current HC2 charges certificate";
        FreeContraceptives = "0010", "was prescribed free-of-charge contraceptives";
        IncomeSupport = "0011", "gets income support (IS)";
        JobSeekers = "0012", "gets income based Job Seeker's Allowance (JSA (IB))";
        TaxCredit = "0013", "is entitled to, or named on a VALID NHS tax credit exemption certificate";
        PensionCredit = "0014", "has a partner who gets Pension Credit Guarantee Credit (PGCC)";
        NoCharge = "0015", "Patient does not need to pay the prescription charge";
    }
}

impl ChargeExemption {
    /// How many prescription charges a claim with this exemption may say were paid when
    /// `supplied` items were supplied: 0001 (the patient paid) one to one per supplied item, and
    /// none at all with nothing supplied; every other exemption names no charges. The centre
    /// refuses a claim outside it and the counter does not offer one.
    pub fn charges_paid_allowed(self, supplied: usize) -> core::ops::RangeInclusive<usize> {
        match self {
            Self::PaidCharges => 1..=supplied,
            _ => 0..=0,
        }
    }
}

#[cfg(test)]
mod charge_tests {
    use super::ChargeExemption;

    #[test]
    fn only_paid_charges_name_charges_and_never_more_than_were_supplied() {
        let paid = ChargeExemption::PaidCharges;
        assert_eq!(paid.charges_paid_allowed(2), 1..=2);
        assert!(paid.charges_paid_allowed(0).is_empty());
        assert_eq!(ChargeExemption::Under16.charges_paid_allowed(3), 0..=0);
    }
}
